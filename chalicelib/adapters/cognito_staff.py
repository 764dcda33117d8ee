"""The staff user pool through boto3's cognito-idp: Cognito's answers translated to the domain's
sign-in steps. The password and the codes go to Cognito and nowhere else; Cognito's error codes
become a `Refused` (for the audit log), never an exception a page would show."""

from __future__ import annotations

from botocore.exceptions import ClientError

from ..domain.staff import CHALLENGES, Challenge, Refused, SignedIn, SignInStep, member_from_id_token

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
