"""The base of every route kind's options, apart so that kinds in their own packages (smpp)
can subclass it without importing the registry that lists them."""

from pydantic import BaseModel, ConfigDict


class RouteOptions(BaseModel):
    """Base of every kind's options: unknown keys are mistakes, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)
