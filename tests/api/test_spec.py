"""The contract every start reads is the vendored YAML file itself."""

from pathlib import Path

import orjson
import yaml

from opencomms.api import spec

SPEC = Path(__file__).parents[2] / "src" / "opencomms" / "spec"


def test_the_json_twin_is_the_yaml_contract() -> None:
    vendored = yaml.safe_load((SPEC / "twilio_comms_v1.yaml").read_text("utf-8"))
    # Compared as JSON text: the same values in the same order (paths are served in it).
    assert orjson.dumps(spec.document()) == orjson.dumps(vendored), (
        "twilio_comms_v1.yaml changed: run scripts/spec-json"
    )
