"""The local stack's demo staff: one FICTITIOUS member of staff per group of the user pool, with
a random password each (printed by `make run`, never written to a file). With multi-factor on
(STAFF_MFA=on), each has the authenticator app set up, and signing in asks for its code: moto
accepts any 6 digits (docs/stack-findings.md)."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass

import boto3

GROUPS = ("support", "finance", "register-admin", "admin")
DOMAIN = "staff.tracekit.invalid"  # .invalid: no mail can ever reach it


@dataclass(frozen=True)
class DemoStaff:
    group: str
    username: str  # the email address they sign in with
    password: str


def demo_password() -> str:
    """Random, and within any password policy the template sets: 20 characters with each kind."""
    alphabet = string.ascii_letters + string.digits
    body = "".join(secrets.choice(alphabet) for _ in range(16))
    return body + secrets.choice(string.ascii_uppercase) + secrets.choice(string.ascii_lowercase) + "7!"


def create_demo_staff(endpoint_url: str | None, region: str, pool_id: str, mfa: bool) -> list[DemoStaff]:
    cognito = boto3.session.Session(region_name=region).client("cognito-idp", endpoint_url=endpoint_url)
    return [add_staff_member(cognito, pool_id, f"{group}@{DOMAIN}", group, mfa) for group in GROUPS]


def add_staff_member(cognito, pool_id: str, email: str, group: str, mfa: bool) -> DemoStaff:
    """One person in one group, with a password of their own already set (no first-sign-in
    change) and, with `mfa`, the authenticator app set up as the person would: add the key, then
    prove it with a code."""
    password = demo_password()
    cognito.admin_create_user(
        UserPoolId=pool_id,
        Username=email,
        UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
        MessageAction="SUPPRESS",
    )
    cognito.admin_set_user_password(UserPoolId=pool_id, Username=email, Password=password, Permanent=True)
    cognito.admin_add_user_to_group(UserPoolId=pool_id, Username=email, GroupName=group)
    if mfa:
        access = _access_token(cognito, pool_id, email, password)
        cognito.associate_software_token(AccessToken=access)
        cognito.verify_software_token(AccessToken=access, UserCode="000000")  # moto accepts any code
        cognito.admin_set_user_mfa_preference(
            UserPoolId=pool_id,
            Username=email,
            SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True},
        )
    return DemoStaff(group, email, password)


def _access_token(cognito, pool_id: str, email: str, password: str) -> str:
    client_id = cognito.list_user_pool_clients(UserPoolId=pool_id, MaxResults=1)["UserPoolClients"][0]["ClientId"]
    answer = cognito.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": email, "PASSWORD": password}
    )
    return answer["AuthenticationResult"]["AccessToken"]
