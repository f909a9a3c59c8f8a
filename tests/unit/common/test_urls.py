"""The one URL masking rule: passwords hidden, where the server is kept."""

from __future__ import annotations

import pytest

from common.urls import mask_url


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://:s3cret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("rediss://user:s3cret@redis.example:6380/2", "rediss://user:***@redis.example:6380/2"),
        ("redis://user:p@ss/w@host:1/0", "redis://user:***@host:1/0"),  # unescaped @ and / inside the password
        ("redis+cluster://:s3cret@10.0.0.1:7000,10.0.0.2:7000", "redis+cluster://:***@10.0.0.1:7000,10.0.0.2:7000"),
        ("redis://host:6379/0?password=s3cret&db=1", "redis://host:6379/0?password=***&db=1"),
        ("postgresql://root:s3cret@127.0.0.1:5432/postrec", "postgresql://root:***@127.0.0.1:5432/postrec"),
        ("postgresql://root@127.0.0.1:5432/postrec", "postgresql://root@127.0.0.1:5432/postrec"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("not a url", "not a url"),
    ],
)
def test_mask_url_hides_only_the_password(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    assert "s3cret" not in mask_url(url)
