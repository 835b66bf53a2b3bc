"""Where and how a run computes: device and precision (:mod:`.runtime`), several processes (:mod:`.distributed`, :mod:`.launch`) and the CPU fast paths (:mod:`.accel`)."""
