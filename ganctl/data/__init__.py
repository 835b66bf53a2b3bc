"""Data: the catalogue and its downloads (:mod:`.catalog`, :mod:`.fetch`, :mod:`.download`), images,
pairs and unpaired sets read from the store or a folder (:mod:`.datasets`, :mod:`.paired`,
:mod:`.unpaired`), the data kinds' loaders (:mod:`.loading`) and the feeders that turn an epoch's
batch order into tensors on the device (:mod:`.feeders`). The catalogue, downloads and loaders
import no torch, so the command line checks a ``--dataset`` before torch is imported."""
