"""Service endpoints: health, `whoami`, and the card YAML check the client calls before committing a README."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from dialoghub.hub.server.dependencies import LOCAL_USER, Body, Settings, has_valid_token, json_body
from dialoghub.hub.server.validation import HubError, validate_readme_metadata, validate_repo_type

router = APIRouter()


class ValidateYamlBody(Body):
    content: str
    repoType: str | None = None  # noqa: N815 - the Hub's field name


@router.get("/api/dialoghub/health")
def health():
    return {"status": "ok"}


@router.get("/api/whoami-v2")
def whoami(request: Request, settings: Settings):
    if settings.token is not None and not has_valid_token(request):
        raise HubError(401, None, "Invalid user token")
    return {
        "type": "user",
        "id": LOCAL_USER,
        "name": LOCAL_USER,
        "fullname": "dialoghub embedded Hub user",
        "orgs": [],
        "auth": {"type": "access_token", "accessToken": {"displayName": "local", "role": "write"}},
    }


@router.post("/api/validate-yaml")
def validate_yaml(body: Annotated[ValidateYamlBody, Depends(json_body(ValidateYamlBody))]):
    errors = validate_readme_metadata(body.content, validate_repo_type(body.repoType))
    status = 400 if errors else 200
    return JSONResponse({"errors": [{"message": message} for message in errors], "warnings": []}, status)
