"""Chinese vehicle licence plates: "京A12345", "粤B·D12345" (new energy), "沪C1234学".

A plate names its owner to anyone with access to the vehicle registry, and in customer
service it comes with parking, car-hire, insurance and delivery chats; it is handled like a
phone number: agents see it, plugins and exports get it masked (``京*·*****``). The form is
its own validation and needs no cue: a province's one-character abbreviation, the letter of
the issuing office, an optional dot or space, then five characters of which at least three
are digits (letters never I or O), six with at least four digits (new-energy plates), or four
and a character of use (学 driving school, 警 police, 挂 trailer, 港/澳 cross-border, 领, 试,
超). Only what follows the province's character is reported: the province itself says
little, and a rule reads what follows its phrase.

Left alone: plates of other places (no form tells a British or a Hong Kong plate from a
product code without a cue), military and embassy plates.
"""

from __future__ import annotations

import string

from .context import context_rule

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
"""The abbreviation plates start with, one per province-level division of the mainland."""

_LETTER = "[a-hj-np-z0-9]"
PLATE = (
    r"[a-z]\s?[·•・.\-]?\s?(?:"
    rf"(?=(?:[a-hj-np-z]*[0-9]){{3}}){_LETTER}{{5}}"
    rf"|(?=(?:[a-hj-np-z]*[0-9]){{4}}){_LETTER}{{6}}"
    rf"|{_LETTER}{{4}}[学警挂港澳领试超]"
    r")(?![a-z0-9])"
)
"""What follows the province's character (the view is lower case, digits ASCII)."""

NOT_AFTER = r"(?<!全新|最新|更新|重新|崭新|创新)"
"""Words ending in 新 (Xinjiang) that precede a product's model as often as 新 starts a
plate: "全新X10000" is a model."""

RULE = context_rule(
    "vehicle_plate", "vehicle_plate.form", tuple(PROVINCES), f"{NOT_AFTER} ?", PLATE
)

GATE_PHRASES = tuple(
    province + space + letter
    for province in PROVINCES
    for space in ("", " ")
    for letter in string.ascii_lowercase
)
"""A province's character and a letter, maybe a space between (the rule's filler): the
engine opens the rule only on a message with one. Its own phrases, the 31 characters, are
in most Chinese text; these 1,612 are in the gate's one automaton pass, at no cost per
message (a regex search for them cost 0.25 us on every chat line)."""
