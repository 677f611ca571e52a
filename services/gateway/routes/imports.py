"""/api/v1/imports: CSV imports (assign or update, with a dry run), their progress, their
error report and the template. The engine is admin/import_jobs.py."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from services.common.errors import DomainError, ValidationFailed, field_error
from services.gateway import csv_format
from services.gateway.admin.http import ApiRoutes, bool_param, ok
from services.gateway.admin.import_jobs import (
    IMPORT_SYNC_WAIT_S,
    ImportJob,
    ImportJobs,
    parse_overwrite,
    run_import,
)
from services.gateway.auth import Principal, check_csrf

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
# Multipart framing and the small fields around the file.
FORM_OVERHEAD_BYTES = 64 * 1024
IMPORT_MODES = ("assign", "update")

route = ApiRoutes()


def attachment(name: str) -> dict[str, str]:
    return {"content-disposition": f'attachment; filename="{name}"'}


@route("GET", "/imports/template.csv")
async def import_template(request: Request, principal: Principal) -> Response:
    return Response(csv_format.TEMPLATE_CSV, media_type=CSV_MEDIA_TYPE,
                    headers=attachment("backorder-import-template.csv"))


@route("POST", "/imports", csrf_in_form=True)
async def create_import(request: Request, principal: Principal) -> Response:
    declared = int(request.headers.get("content-length") or 0)
    if declared > csv_format.MAX_IMPORT_BYTES + FORM_OVERHEAD_BYTES:
        raise DomainError(f"the file is larger than {csv_format.MAX_IMPORT_BYTES // (1024 * 1024)} MB; "
                          "split it into smaller files", code="payload_too_large",
                          details={"max_bytes": csv_format.MAX_IMPORT_BYTES})
    form = await request.form(max_files=1, max_fields=20)
    check_csrf(request, principal, form_value=str(form.get("csrf_token") or ""))
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ValidationFailed("attach the CSV file as the multipart field 'file'",
                               errors=[field_error("file", "required")])
    mode = str(form.get("mode") or "assign").strip().lower()
    if mode not in IMPORT_MODES:
        raise ValidationFailed("mode must be assign or update", errors=[field_error("mode", "not_allowed")])
    job = ImportJob(id=uuid.uuid4().hex, store_hash=principal.store_hash, mode=mode,
                    dry_run=bool_param(form.get("dry_run"), "dry_run"),
                    overwrite=parse_overwrite(str(form["overwrite"]) if form.get("overwrite") is not None else None),
                    file_name=upload.filename or "import.csv")
    jobs: ImportJobs = request.app.state.import_jobs
    jobs.add(job)
    job.task = asyncio.create_task(run_import(request, principal, job, upload.file))
    jobs.track(job)
    try:
        await asyncio.wait_for(asyncio.shield(job.task), IMPORT_SYNC_WAIT_S)
    except TimeoutError:
        return ok(job.to_json(), 202)
    return ok(job.to_json(), 200 if job.status != "failed" else 422)


@route("GET", "/imports/{import_id}")
async def get_import(request: Request, principal: Principal) -> Response:
    return ok(await request.app.state.import_jobs.get_json(principal.store_hash, request.path_params["import_id"]))


@route("GET", "/imports/{import_id}/errors.csv")
async def import_errors_csv(request: Request, principal: Principal) -> Response:
    job = await request.app.state.import_jobs.get_json(principal.store_hash, request.path_params["import_id"])
    return Response("\ufeff" + csv_format.error_report_csv(job["errors"]), media_type=CSV_MEDIA_TYPE,
                    headers=attachment(f"import-errors-{job['id'][:8]}.csv"))


async def startup(app: Any) -> None:
    app.state.import_jobs = await ImportJobs.open(app.state.bus)


async def shutdown(app: Any) -> None:
    app.state.import_jobs.interrupt_running()
    await app.state.import_jobs.close()


routes = route.routes
