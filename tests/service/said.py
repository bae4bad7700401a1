"""What every refusal of the service must carry: its reason in Simplified Chinese as well as in English."""

from __future__ import annotations

import re
from typing import Any

from creditmodel.texts import text

UNTRANSLATED = text("error.untranslated", "zh", msg="")  # the Chinese of a message no catalogue text says


def assert_said_in_both(item: dict[str, Any]) -> None:
    """The error item has its English ``msg`` and a Chinese ``msg_zh`` of its own (not the English behind
    the fallback's "请求无效：")."""
    assert isinstance(item.get("msg"), str) and item["msg"], item
    zh = item.get("msg_zh")
    assert isinstance(zh, str) and re.search(r"[\u4e00-\u9fff]", zh), item
    assert not zh.startswith(UNTRANSLATED), item
