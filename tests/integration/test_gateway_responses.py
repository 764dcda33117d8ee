"""The answers API Gateway gives by itself (gateway responses), declared once in
infra/resources.json and served locally by devstack.local_api in front of chalice local."""

from __future__ import annotations

import pytest

from devstack.aws import gateway_responses_declared
from devstack.local_api import UnsupportedTemplate, gateway_responses, inert_under_velocity, not_found_response


def test_the_declared_404_is_the_app_s_404_page_as_it_renders_now():
    declared = gateway_responses_declared()["MISSING_AUTHENTICATION_TOKEN"]
    assert declared == not_found_response(), "run `python -m devstack.local_api --write-template`"


def test_the_local_stand_in_answers_with_the_declared_status_headers_and_page():
    status, headers, body = gateway_responses()["MISSING_AUTHENTICATION_TOKEN"]
    assert status == 404
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-store" and "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert b"Page not found" in body and b'href="/status"' in body


@pytest.mark.parametrize(
    "text",
    [
        "$context.error.messageString",
        "## a comment",
        "#* a comment *#",
        "#set($a = 1)",
        "#if(true)",
        "#{end}",
        "#[[unparsed]]#",
        "a #foreach",
        "#define",
    ],
)
def test_text_velocity_or_api_gateway_would_expand_is_not_inert(text):
    assert not inert_under_velocity(text)


@pytest.mark.parametrize("text", ['<a href="#main-content">', "&#8217;", "C# and #1", "#settings", "#endless"])
def test_plain_html_with_fragment_links_and_character_references_is_inert(text):
    assert inert_under_velocity(text)


@pytest.mark.parametrize(
    "response",
    [
        {"statusCode": "404", "responseTemplates": {"application/json": '{"message": $context.error.messageString}'}},
        {"statusCode": "404", "responseParameters": {"gatewayresponse.header.X-Request": "method.request.header.x"}},
    ],
)
def test_the_stand_in_refuses_what_it_cannot_reproduce_rather_than_guess(response):
    with pytest.raises(UnsupportedTemplate):
        gateway_responses({"MISSING_AUTHENTICATION_TOKEN": response})
