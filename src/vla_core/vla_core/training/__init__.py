"""Training: from Episodes to a fine-tuned policy checkpoint (`vla train`).

One module per job: `config` (the TrainConfig dataclass and its YAML), `samples` (an episode
frame -> the network's batch dict, with actions encoded in the embodiment's action space),
`mixture` (which samples each step and rank draws), `datasets` (loading sources, held-out split,
the map-style torch Dataset), `augment` (seeded image augmentation), `distributed` (DDP / FSDP
from the launcher's environment), `state` (resumable training state without pickle),
`validation`, `report` (metrics JSON lines and the loss curve), `loop` (the trainer) and `lineage`
(the runs a checkpoint was trained in, for its model card).
"""
