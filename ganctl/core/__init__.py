"""Below everything else: errors, paths, atomic writes, locks, seeds, timing, image files (torch-free except :mod:`.images`' tensor helpers)."""
