"""Service endpoints: health, `whoami`, and the card YAML check the client calls before committing a README."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from dialoghub.hub.dependencies import LOCAL_USER, Settings, has_valid_token, json_body
from dialoghub.hub.validation import HubError, validate_readme_metadata, validate_repo_type

router = APIRouter()


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
async def validate_yaml(request: Request):
    data = await json_body(request)
    content = data.get("content")
    if not isinstance(content, str):
        raise HubError(400, None, '"content" must be a string')
    repo_type = validate_repo_type(data.get("repoType"))
    errors = validate_readme_metadata(content, repo_type)
    status = 400 if errors else 200
    return JSONResponse({"errors": [{"message": message} for message in errors], "warnings": []}, status)
