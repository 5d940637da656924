"""A muse's structured attributes and its variations.

:data:`CHOICES` are the pick lists the studio offers for each attribute (the character
builder's choices: nationality, ethnicity, occupation; height, build, shape; face shape,
jawline, cheekbones, makeup; eye colour, shape and size; hair colour, seven lengths from
pixie to very long, style and texture; lips, nose, skin tone and texture; fashion,
footwear, nails; personality traits). A value is a short phrase: one of the choices or
free text, so nothing the lists lack is out of reach. The prompt composer
(``warmpool.operator.decisions.prompts``) writes them in a readable order.

A :class:`Variation` is a named set of overrides (outfit, scenario, style) chosen when a
job is made (``GenerationJob.spec.variation``): the same character in another outfit or
place.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from warmpool.crds.common import CamelModel

PHRASE = 80

CHOICES: dict[str, tuple[str, ...]] = {
    "nationality": ("American", "Brazilian", "British", "Chinese", "French", "German", "Indian",
                    "Italian", "Japanese", "Korean", "Mexican", "Nigerian", "Russian", "Spanish",
                    "Swedish"),
    "ethnicity": ("African", "East Asian", "South Asian", "Southeast Asian", "European",
                  "Hispanic", "Middle Eastern", "Pacific Islander", "mixed heritage"),
    "occupation": ("artist", "athlete", "chef", "doctor", "engineer", "musician", "pilot",
                   "scientist", "soldier", "teacher", "writer", "ship captain"),
    "height": ("petite", "short", "average height", "tall", "very tall"),
    "build": ("slim", "athletic", "average", "curvy", "muscular", "stocky", "plus-size"),
    "shape": ("hourglass", "pear", "apple", "rectangle", "inverted triangle"),
    "face_shape": ("oval", "round", "square", "heart-shaped", "diamond", "long"),
    "jawline": ("soft", "defined", "sharp", "square", "rounded"),
    "cheekbones": ("high", "prominent", "soft", "subtle"),
    "makeup": ("no makeup", "natural makeup", "glamorous makeup", "smoky eyes", "red lipstick"),
    "eye_colour": ("brown", "hazel", "green", "blue", "grey", "amber"),
    "eye_shape": ("almond", "round", "hooded", "monolid", "upturned", "downturned"),
    "eye_size": ("small", "medium", "large"),
    "hair_colour": ("black", "dark brown", "brown", "auburn", "red", "blonde", "platinum",
                    "silver", "white"),
    "hair_length": ("pixie", "short", "chin-length", "shoulder-length", "medium", "long",
                    "very long"),
    "hair_style": ("straight", "wavy", "curly", "braided", "ponytail", "bun", "bob", "undercut"),
    "hair_texture": ("fine", "thick", "coarse", "silky", "coily"),
    "lips": ("thin", "full", "heart-shaped", "wide"),
    "nose": ("button", "straight", "aquiline", "wide", "narrow", "roman"),
    "skin_tone": ("fair", "light", "medium", "olive", "tan", "brown", "dark"),
    "skin_texture": ("smooth", "freckled", "matte", "dewy", "weathered"),
    "fashion": ("casual", "streetwear", "business", "bohemian", "vintage", "sporty",
                "elegant evening wear", "gothic"),
    "footwear": ("sneakers", "boots", "ankle boots", "heels", "sandals", "loafers", "barefoot"),
    "nails": ("natural nails", "short painted nails", "long manicured nails",
              "french manicure"),
    "personality": ("confident", "shy", "playful", "serious", "curious", "calm", "adventurous",
                    "mysterious", "warm", "witty"),
}  # fmt: skip


def _phrase(description: str) -> Any:
    return Field("", max_length=PHRASE, description=description)


class Traits(CamelModel):
    """Structured attributes; each a choice of :data:`CHOICES` or a short free phrase."""

    nationality: str = _phrase("Nationality.")
    ethnicity: str = _phrase("Ethnicity.")
    occupation: str = _phrase("Occupation.")
    height: str = _phrase("Height.")
    build: str = _phrase("Build.")
    shape: str = _phrase("Body shape.")
    face_shape: str = _phrase("Face shape.")
    jawline: str = _phrase("Jawline.")
    cheekbones: str = _phrase("Cheekbones.")
    makeup: str = _phrase("Makeup.")
    eye_colour: str = _phrase("Eye colour.")
    eye_shape: str = _phrase("Eye shape.")
    eye_size: str = _phrase("Eye size.")
    hair_colour: str = _phrase("Hair colour.")
    hair_length: str = _phrase("Hair length (pixie … very long).")
    hair_style: str = _phrase("Hair style.")
    hair_texture: str = _phrase("Hair texture.")
    lips: str = _phrase("Lips.")
    nose: str = _phrase("Nose.")
    skin_tone: str = _phrase("Skin tone.")
    skin_texture: str = _phrase("Skin texture.")
    fashion: str = _phrase("Fashion style.")
    footwear: str = _phrase("Footwear.")
    nails: str = _phrase("Nails.")
    personality: list[str] = Field(
        default_factory=list, max_length=8, description="Personality traits."
    )

    @field_validator("personality")
    @classmethod
    def _short(cls, value: list[str]) -> list[str]:
        for trait in value:
            if len(trait) > PHRASE:
                raise ValueError(f"a personality trait has at most {PHRASE} characters")
        return value


class Variation(CamelModel):
    """The same muse in another outfit, place or style (chosen per job by ``name``)."""

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        description="Name a job chooses it by (a DNS label).",
    )
    outfit: str = Field("", max_length=400, description="Replaces the usual outfit.")
    scenario: str = Field("", max_length=400, description="Where and doing what.")
    style: str = Field("", max_length=400, description="Replaces the muse's style.")
