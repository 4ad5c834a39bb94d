"""What a new password may not be, wherever it is set (sign-up, the CLI, a change or reset).

- shorter than 8 characters or longer than 256;
- one of the commonest passwords (`common_passwords.txt`, shipped with the package; compared
  ignoring case): the first ones any guesser tries, whatever the rate limits;
- the person's username or the first part of their email address, or a password containing
  either (a part shorter than 3 characters counts only when it is the whole password).

A refusal is a 422 `validation_error` with `fields.password` saying what to change.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from pigeon.core.errors import Invalid

MIN_LENGTH, MAX_LENGTH = 8, 256


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list, read once (it never changes while the process runs)."""
    text = resources.files(__package__).joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


def check_new_password(
    password: str, *, username: str, email: str, field: str = "password"
) -> None:
    """Refuse a password nobody should be allowed to choose (the rules above); `field` names
    the input it came from in the refusal."""
    problem = _problem(password, username=username, email=email)
    if problem is not None:
        raise Invalid(f"{field}: {problem}", fields={field: problem})


def _problem(password: str, *, username: str, email: str) -> str | None:
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    folded = password.casefold()
    if folded in common_passwords():
        return "This is one of the most common passwords; choose one that is harder to guess."
    for part, what in (
        (username.strip().casefold(), "your username"),
        (email.strip().casefold().partition("@")[0], "the first part of your email address"),
    ):
        if part and (folded == part or (len(part) >= 3 and part in folded)):
            return f"Choose a password that does not contain {what}."
    return None
