"""The served contract, the docs page and the 405 answers."""

import httpx
import yaml

from opencomms.api import spec


async def test_openapi_json_is_twilios_contract_plus_tagged_extensions(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/openapi.json")
    assert response.status_code == 200
    served = response.json()
    twilio = spec.document()
    # Every one of Twilio's paths and schemas is served as it is (MessageAttempt only gains
    # the documented identifier).
    for path, item in twilio["paths"].items():
        assert served["paths"][path] == item, path
    for name, schema in twilio["components"]["schemas"].items():
        if name != "MessageAttempt":
            assert served["components"]["schemas"][name] == schema, name
    assert "identifier" in served["components"]["schemas"]["MessageAttempt"]["properties"]
    extension_tag = spec.extensions()["tags"][0]["name"]
    assert extension_tag in [t["name"] for t in served["tags"]]
    extra = set(served["paths"]) - set(twilio["paths"])
    assert extra == {
        "/Sandbox/Messages",
        "/Sandbox/Inbound",
        "/Messages/Operations/{operationId}/Cancel",
        "/Sandbox/Emails",
        "/Sandbox/Emails/{emailId}/Raw",
        "/Emails/Operations/{operationId}/Cancel",
    }
    for path in extra:
        for operation in served["paths"][path].values():
            assert operation["tags"] == [extension_tag]
    assert served["servers"][0]["url"] == "http://testserver/v1"
    as_yaml = await client.get("/v1/openapi.yaml")
    assert as_yaml.status_code == 200
    assert yaml.safe_load(as_yaml.text) == served


async def test_every_ref_of_the_served_contract_resolves(client: httpx.AsyncClient) -> None:
    served = (await client.get("/v1/openapi.json")).json()
    refs: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(served)
    for ref in refs:
        target: object = served
        for part in ref.removeprefix("#/").split("/"):
            assert isinstance(target, dict) and part in target, ref
            target = target[part]


async def test_frameworks_own_description_is_gone(client: httpx.AsyncClient) -> None:
    assert (await client.get("/openapi.json")).status_code == 404
    assert (await client.get("/redoc")).status_code == 404


async def test_docs_render_from_vendored_assets_only(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    # Nothing is loaded from another host.
    assert "//cdn" not in page.text and "https://" not in page.text
    for asset in (
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/assets/swagger-ui.css",
        "/console/static/docs-init.js",
    ):
        response = await client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 100


async def test_405_lists_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    response = await client.delete("/v1/Messages")
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) >= {"GET", "POST"}
    assert response.json()["errors"][0]["code"] == 20004
    sandbox = await client.put("/v1/Sandbox/Messages")
    assert set(sandbox.headers["allow"].split(", ")) >= {"GET", "DELETE"}
    operation = await client.post(
        "/v1/Messages/Operations/comms_operation_01h9krwprkeee8fzqspvwy6nq8"
    )
    assert operation.status_code == 405
    assert "GET" in operation.headers["allow"].split(", ")
    assert "POST" not in operation.headers["allow"].split(", ")
