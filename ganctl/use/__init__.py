"""Using a generator: which one (:mod:`.generators`), loading it (:mod:`.inference`), sampling, and translation of images, folders, tiles and videos."""
