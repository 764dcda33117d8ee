"""The staff user pool through boto3's cognito-idp: Cognito's answers translated to the domain's
sign-in steps. The password and the codes go to Cognito and nowhere else; Cognito's error codes
become a `Refused` (for the audit log), never an exception a page would show."""

from __future__ import annotations

from botocore.exceptions import ClientError

from ..domain.errors import StaffAccountExists
from ..domain.staff import (
    CHALLENGES,
    Challenge,
    Group,
    Refused,
    SignedIn,
    SignInStep,
    StaffAccount,
    groups_of,
    member_from_id_token,
)

# Cognito's errors that mean "not signed in", kept by code for the audit log; anything else
# (throttling, an outage) is raised, so the page says the service is busy.
_REFUSALS = {
    "NotAuthorizedException",
    "UserNotFoundException",
    "UserNotConfirmedException",
    "PasswordResetRequiredException",
    "CodeMismatchException",
    "ExpiredCodeException",
    "InvalidPasswordException",
    "EnableSoftwareTokenMFAException",
    "InvalidParameterException",
}


class CognitoStaff:
    def __init__(self, client, pool_id: str, client_id: str):
        self._client, self._pool_id, self._client_id = client, pool_id, client_id

    def sign_in(self, username: str, password: str) -> SignInStep:
        return self._step(
            username,
            lambda: self._client.initiate_auth(
                ClientId=self._client_id,
                AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": username, "PASSWORD": password},
            ),
        )

    def answer(self, challenge: Challenge, answer: str) -> SignInStep:
        name = "SOFTWARE_TOKEN_MFA" if challenge.name == "MFA_SETUP" else challenge.name
        field = {"SOFTWARE_TOKEN_MFA": "SOFTWARE_TOKEN_MFA_CODE", "NEW_PASSWORD_REQUIRED": "NEW_PASSWORD"}[name]
        if challenge.name == "MFA_SETUP":
            return self._verified_setup(challenge, answer)
        return self._step(
            challenge.username,
            lambda: self._client.respond_to_auth_challenge(
                ClientId=self._client_id,
                ChallengeName=name,
                Session=challenge.session,
                ChallengeResponses={"USERNAME": challenge.username, field: answer},
            ),
        )

    def set_up_authenticator(self, challenge: Challenge) -> tuple[str, Challenge]:
        answer = self._client.associate_software_token(Session=challenge.session)
        waiting = Challenge("MFA_SETUP", challenge.username, answer.get("Session", challenge.session))
        return answer["SecretCode"], waiting

    def _verified_setup(self, challenge: Challenge, code: str) -> SignInStep:
        def verify_then_respond():
            verified = self._client.verify_software_token(Session=challenge.session, UserCode=code)
            if verified.get("Status") != "SUCCESS":
                raise ClientError({"Error": {"Code": "CodeMismatchException", "Message": ""}}, "VerifySoftwareToken")
            return self._client.respond_to_auth_challenge(
                ClientId=self._client_id,
                ChallengeName="MFA_SETUP",
                Session=verified.get("Session", challenge.session),
                ChallengeResponses={"USERNAME": challenge.username},
            )

        return self._step(challenge.username, verify_then_respond)

    # --- the admin's page: the pool's users and their groups (IAM-authorised admin calls) ---------

    def accounts(self) -> list[StaffAccount]:
        members: dict[str, set[str]] = {}
        for group in Group:
            pages = self._client.get_paginator("list_users_in_group")
            for page in pages.paginate(UserPoolId=self._pool_id, GroupName=group.value):
                for user in page.get("Users", ()):
                    members.setdefault(user["Username"], set()).add(group.value)
        found = []
        for page in self._client.get_paginator("list_users").paginate(UserPoolId=self._pool_id):
            found += [_account(user, members.get(user["Username"], set())) for user in page.get("Users", ())]
        return sorted(found, key=lambda a: a.email)

    def account(self, sub: str) -> StaffAccount | None:
        if not sub or '"' in sub or "\\" in sub:
            return None
        users = self._client.list_users(UserPoolId=self._pool_id, Filter=f'sub = "{sub}"', Limit=1)["Users"]
        if not users:
            return None
        groups = self._client.admin_list_groups_for_user(UserPoolId=self._pool_id, Username=users[0]["Username"])
        return _account(users[0], {g["GroupName"] for g in groups.get("Groups", ())})

    def invite(self, email: str, groups: frozenset[Group]) -> StaffAccount:
        try:
            made = self._client.admin_create_user(
                UserPoolId=self._pool_id,
                Username=email,
                UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
                DesiredDeliveryMediums=["EMAIL"],
            )["User"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("UsernameExistsException", "AliasExistsException"):
                raise StaffAccountExists(email) from None
            raise
        account = _account(made, set())
        self.set_groups(account, groups)
        return _account(made, {g.value for g in groups})

    def set_groups(self, account: StaffAccount, groups: frozenset[Group]) -> None:
        for group in sorted(groups - account.groups):
            self._client.admin_add_user_to_group(
                UserPoolId=self._pool_id, Username=account.username, GroupName=group.value
            )
        for group in sorted(account.groups - groups):
            self._client.admin_remove_user_from_group(
                UserPoolId=self._pool_id, Username=account.username, GroupName=group.value
            )

    def set_enabled(self, account: StaffAccount, enabled: bool) -> None:
        call = self._client.admin_enable_user if enabled else self._client.admin_disable_user
        call(UserPoolId=self._pool_id, Username=account.username)

    def _step(self, username: str, call) -> SignInStep:
        try:
            answer = call()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _REFUSALS:
                return Refused(code)
            raise
        tokens = answer.get("AuthenticationResult")
        if tokens:
            return SignedIn(member_from_id_token(tokens["IdToken"]))
        name = answer.get("ChallengeName", "")
        if name not in CHALLENGES:
            return Refused(f"unsupported challenge {name}")
        # Cognito names the user by its own username in the challenge (the email signs in)
        who = (answer.get("ChallengeParameters") or {}).get("USER_ID_FOR_SRP") or username
        return Challenge(name, who, answer["Session"])


def _account(user: dict, groups: set[str]) -> StaffAccount:
    attributes = {a["Name"]: a["Value"] for a in user.get("Attributes", ())}
    return StaffAccount(
        sub=attributes.get("sub", user["Username"]),
        username=user["Username"],
        email=attributes.get("email", user["Username"]),
        enabled=bool(user.get("Enabled", True)),
        status=str(user.get("UserStatus", "")),
        groups=groups_of(groups),
    )
