"""Instruction paraphrase augmentation: training texts reworded within groups of equivalent wordings.

Demonstrations are recorded with one wording per task, so a policy trained on them may key on
the exact words rather than on what they name; an evaluation with held-out paraphrases then
fails although the policy knows where to go. Rewording the instructions while training
(instruction augmentation, as RT-1 and OpenVLA-style recipes do with generated paraphrases)
teaches that only the named slots matter. A group is a list of templates with named slots
(`{colour}`); a text that contains one of them is, with probability `rate`, rewritten with
another template of the group, the slots carried over. Paraphrases meant for evaluation must
not appear in any group: that is what keeps them held out.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

import torch

_SLOT = re.compile(r"\{(\w+)\}")


def _pattern(template: str) -> re.Pattern[str]:
    """`template` as a regular expression whose named groups capture its slots (one word each)."""
    parts, last = [], 0
    for slot in _SLOT.finditer(template):
        parts += [re.escape(template[last:slot.start()]), f"(?P<{slot.group(1)}>\\w+)"]
        last = slot.end()
    return re.compile("".join(parts + [re.escape(template[last:])]))


class InstructionParaphraser:
    """Rewords training texts within `groups` of equivalent templates, each with probability `rate`."""

    def __init__(self, groups: Sequence[Sequence[str]], rate: float) -> None:
        if not 0 <= rate <= 1:
            raise ValueError(f"instruction_paraphrase_rate must be in [0, 1], got {rate}")
        self.groups: list[list[str]] = []
        for index, group in enumerate(groups):
            templates = list(group)
            slots = [sorted(_SLOT.findall(template)) for template in templates]
            if len(templates) < 2 or any(s != slots[0] for s in slots):
                raise ValueError(f"instruction_paraphrases[{index}] needs at least two templates with the same "
                                 f"slots, got {templates}")
            self.groups.append(templates)
        self._patterns = [[_pattern(template) for template in group] for group in self.groups]
        self.rate = rate

    def reword(self, text: str, generator: torch.Generator) -> str:
        """`text` with its first matching template replaced by a random other one of its group (or
        unchanged: no match, or not drawn). Draws the same numbers whatever the text, so the
        generator's later draws do not depend on the words."""
        draw, choice = torch.rand((), generator=generator).item(), torch.rand((), generator=generator).item()
        if draw >= self.rate:
            return text
        for group, patterns in zip(self.groups, self._patterns):
            for index, pattern in enumerate(patterns):
                match = pattern.search(text)
                if match is None:
                    continue
                others = [template for i, template in enumerate(group) if i != index]
                replacement = others[int(choice * len(others))].format(**match.groupdict())
                return text[:match.start()] + replacement + text[match.end():]
        return text

    def apply(self, batch: dict, generator: torch.Generator) -> dict:
        """A copy of `batch` with its texts reworded."""
        return {**batch, "texts": [self.reword(text, generator) for text in batch["texts"]]}
