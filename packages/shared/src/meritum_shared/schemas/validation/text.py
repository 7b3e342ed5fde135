"""Text accepted from clients, refused when PostgreSQL or a hash could not take it.

PostgreSQL's text types cannot hold NUL, and a string holding a lone
surrogate (``"\\ud800"`` is valid JSON, and Python's JSON decoder also lets
the raw bytes of one through) cannot be encoded as UTF-8 for the database,
a digest or a password hash. Every ``str`` or ``SecretStr`` a request
carries is typed :data:`Text` or :data:`SecretText` so that such input is a
validation error, never a 500. The checks run before any other rule, on
the raw input, so that the error says why; they never repeat the value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Final

from pydantic import BeforeValidator, GetCoreSchemaHandler, GetJsonSchemaHandler, SecretStr
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

NUL_MESSAGE: Final = "Must not contain a NUL character"
ENCODING_MESSAGE: Final = "Must be text that can be encoded as UTF-8"


def refuse_unsafe_text(value: Any) -> Any:
    """Raise a validation error if ``value`` holds NUL or cannot be encoded as UTF-8."""
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    if not isinstance(text, str):
        return value  # not text at all: the type's own validation says so
    if "\x00" in text:
        raise PydanticCustomError("text_nul", NUL_MESSAGE)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise PydanticCustomError("text_encoding", ENCODING_MESSAGE) from None
    return value


#: The one validator every client-supplied string goes through.
SAFE_TEXT: Final = BeforeValidator(refuse_unsafe_text)

#: A client-supplied string.
Text = Annotated[str, SAFE_TEXT]
#: A client-supplied secret: kept out of reprs and logs.
SecretText = Annotated[SecretStr, SAFE_TEXT]


@dataclass(frozen=True, slots=True)
class SecretLength:
    """Length bounds of a :data:`SecretText`, counted and reported in characters.

    Pydantic's own bounds on ``SecretStr`` speak of "items" and repeat the
    actual length, which of a password is a hint worth keeping back.
    """

    min_length: int
    max_length: int

    def __get_pydantic_core_schema__(
        self, source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        document = handler(schema)
        document.update(minLength=self.min_length, maxLength=self.max_length)
        return document

    def _check(self, value: SecretStr) -> SecretStr:
        length = len(value.get_secret_value())
        if length < self.min_length:
            raise PydanticCustomError(
                "secret_too_short", f"Must have at least {self.min_length} characters"
            )
        if length > self.max_length:
            raise PydanticCustomError(
                "secret_too_long", f"Must have at most {self.max_length} characters"
            )
        return value
