"""One translation of pydantic's refusals for the configuration, the mapping file and the service: each text's
English is pydantic's own message (the reference), and its Chinese says the same."""

from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from creditmodel.exceptions import TextedValueError
from creditmodel.texts import text
from creditmodel.texts.pydantic_errors import pydantic_phrase


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["a", "b", "c"] = "a"
    rate: float = Field(0.1, gt=0.0)
    term: int = 12
    name: str = "x"

    @field_validator("name")
    @classmethod
    def _named(cls, value: str) -> str:
        if value == "bad":
            raise TextedValueError.of("error.usage.whole_number", value=value)
        return value


def _error(**values):
    with pytest.raises(ValidationError) as caught:
        _Model.model_validate(values)
    return caught.value.errors()[0]


CASES = [
    ({"kind": "d"}, "取值应为 'a'、'b' 或 'c'"),
    ({"rate": 0}, "取值应大于 0"),
    ({"term": "twelve"}, "应为整数，无法将字符串解析为整数"),
    ({"other": 1}, "不允许的字段"),
]


@pytest.mark.parametrize(("values", "chinese"), CASES, ids=[next(iter(c[0])) for c in CASES])
def test_a_refused_value_is_said_word_for_word_in_english_and_in_chinese(values, chinese):
    err = _error(**values)
    phrase = pydantic_phrase(err)
    assert phrase is not None
    assert text(phrase.id, "en", **phrase.fields) == err["msg"]
    assert text(phrase.id, "zh", **phrase.fields) == chinese


def test_a_validator_s_own_text_is_what_a_value_error_says():
    err = _error(name="bad")
    assert err["msg"] == "Value error, expected a whole number, got 'bad'"
    phrase = pydantic_phrase(err)
    assert phrase is not None and phrase.id == "error.usage.whole_number"
    assert text(phrase.id, "zh", **phrase.fields) == "应为整数，实际为 'bad'"


def test_a_message_worded_otherwise_is_only_said_when_the_caller_keeps_the_english():
    with pytest.raises(ValidationError) as caught:
        _Model.model_validate_json('{"term": 1,')
    err = caught.value.errors()[0]
    assert err["type"] == "json_invalid" and "line 1 column 11" in err["msg"]
    assert pydantic_phrase(err) is None  # the catalogue's English is not pydantic's
    phrase = pydantic_phrase(err, exact=False)
    assert phrase is not None
    assert text(phrase.id, "zh", **phrase.fields) == "请求体不是有效的 JSON（第 1 行第 11 列）"


def test_a_text_of_the_caller_comes_first():
    err = _error(kind="d")
    assert pydantic_phrase(err, ("error.input.no_such_text", "error.input.literal_error")).id == \
        "error.input.literal_error"
    assert pydantic_phrase(err, ("error.input.missing",)).id == "error.input.literal_error"  # not pydantic's words
