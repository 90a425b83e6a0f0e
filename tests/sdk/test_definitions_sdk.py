"""MetricDefinition through the real SDK: roboto 0.53.0 in-process, 0.62.0 in its own virtualenv."""

from __future__ import annotations

import pytest
from roboto.domain.metrics import MetricDefinition
from roboto.exceptions import RobotoConflictException, RobotoNotFoundException, RobotoUnauthorizedException
from roboto.http import BearerTokenDecorator, HttpClientOptions, HttpRetryOptions, RobotoClient


def test_create_get_update_delete_053(sdk, tenant):
    created = MetricDefinition.create(name="cpu.usage_max", description="Peak CPU", roboto_client=sdk)
    assert created.name == "cpu.usage_max"
    assert created.metric_id.startswith("mt_")
    assert created.org_id == tenant.org_id
    assert created._MetricDefinition__record.created_by == tenant.principal

    got = MetricDefinition.get("cpu.usage_max", roboto_client=sdk)
    assert got.metric_id == created.metric_id
    assert got.description == "Peak CPU"

    got.update(description="Peak CPU (%)")
    assert got.description == "Peak CPU (%)"
    assert MetricDefinition.get("cpu.usage_max", roboto_client=sdk).description == "Peak CPU (%)"
    got.update()  # `{}`: unchanged
    assert MetricDefinition.get("cpu.usage_max", roboto_client=sdk).description == "Peak CPU (%)"
    got.update(description=None)  # null: cleared
    assert MetricDefinition.get("cpu.usage_max", roboto_client=sdk).description is None

    got.delete()
    with pytest.raises(RobotoNotFoundException):
        MetricDefinition.get("cpu.usage_max", roboto_client=sdk)


def test_duplicate_is_conflict_and_unknown_is_not_found_053(sdk):
    MetricDefinition.create(name="dup.metric", roboto_client=sdk)
    with pytest.raises(RobotoConflictException):
        MetricDefinition.create(name="dup.metric", roboto_client=sdk)
    with pytest.raises(RobotoNotFoundException):
        MetricDefinition.get("never.created", roboto_client=sdk)


def test_names_with_slash_and_space_are_quoted_053(sdk):
    # Creating such a name is refused (not URL-safe); getting it must reach the route and answer 404, not 405.
    from roboto.exceptions import RobotoInvalidRequestException

    with pytest.raises(RobotoInvalidRequestException):
        MetricDefinition.create(name="we ird/name", roboto_client=sdk)
    with pytest.raises(RobotoNotFoundException):
        MetricDefinition.get("we ird/name", roboto_client=sdk)


def test_for_org_pages_053(sdk, tenant):
    names = sorted(f"m{i:03d}.x" for i in range(230))  # > 2 pages of 100
    for name in names:
        MetricDefinition.create(name=name, roboto_client=sdk)
    listed = [d.name for d in MetricDefinition.for_org(tenant.org_id, roboto_client=sdk)]
    assert listed == names


def test_bad_token_is_unauthorized_053(tenant):
    client = RobotoClient(
        endpoint=tenant.api_url,
        auth_decorator=BearerTokenDecorator(token="not-a-token"),
        http_client_kwargs={"options": HttpClientOptions(retry=HttpRetryOptions(max_attempts=1))},
    )
    with pytest.raises(RobotoUnauthorizedException):
        MetricDefinition.get("anything", roboto_client=client)


def test_other_orgs_definition_is_not_found_053(sdk, tenant, other_tenant):
    from roboto.http import BearerTokenDecorator as B

    other = RobotoClient(endpoint=other_tenant.api_url, auth_decorator=B(token=other_tenant.token))
    MetricDefinition.create(name="secret.metric", roboto_client=other)
    with pytest.raises(RobotoNotFoundException):
        MetricDefinition.get("secret.metric", roboto_client=sdk)
    with pytest.raises(RobotoNotFoundException):
        MetricDefinition.get("secret.metric", owner_org_id=other_tenant.org_id, roboto_client=sdk)
    with pytest.raises(RobotoNotFoundException):
        list(MetricDefinition.for_org(other_tenant.org_id, roboto_client=sdk))


def test_definitions_062(run062, tenant, other_tenant):
    out = run062(
        f"""
        from roboto.domain.metrics import MetricDefinition
        from roboto.exceptions import RobotoConflictException, RobotoNotFoundException
        d = MetricDefinition.create(name="mem.peak_mb", description="Peak RSS", unit="MB", roboto_client=client)
        emit({{"name": d.name, "unit": d._MetricDefinition__record.unit, "org": d.org_id}})
        try:
            MetricDefinition.create(name="mem.peak_mb", roboto_client=client)
        except RobotoConflictException:
            emit("conflict")
        d.update(unit="MiB")
        emit(MetricDefinition.get("mem.peak_mb", roboto_client=client)._MetricDefinition__record.unit)
        d.update(description=None)
        emit(MetricDefinition.get("mem.peak_mb", roboto_client=client).description)
        for i in range(120):
            MetricDefinition.create(name=f"bulk{{i:03d}}", roboto_client=client)
        emit(len(list(MetricDefinition.for_org("{tenant.org_id}", roboto_client=client))))
        try:
            MetricDefinition.get("mem.peak_mb", owner_org_id="{other_tenant.org_id}", roboto_client=client)
        except RobotoNotFoundException:
            emit("other-org-not-found")
        d.delete()
        try:
            MetricDefinition.get("mem.peak_mb", roboto_client=client)
        except RobotoNotFoundException:
            emit("deleted")
        """
    )
    assert out == [
        {"name": "mem.peak_mb", "unit": "MB", "org": tenant.org_id},
        "conflict",
        "MiB",
        None,
        121,
        "other-org-not-found",
        "deleted",
    ]
