import pytest

from dedup.dates import find_times, parse_time, year_from_path


@pytest.mark.parametrize(
    "text, iso, conf",
    [
        ("2023-07-03 09:12", "2023-07-03T09:12:00+08:00", 1.0),
        ("2023-07-03 09:12:30", "2023-07-03T09:12:30+08:00", 1.0),
        ("2023年07月03日 09:12", "2023-07-03T09:12:00+08:00", 1.0),
        ("2023年7月3日09:12", "2023-07-03T09:12:00+08:00", 1.0),
        ("发布时间：2023/7/3", "2023-07-03T00:00:00+08:00", 0.6),
        ("2023-07-03T09:12:00+00:00", "2023-07-03T09:12:00+00:00", 1.0),
        ("1688346720", "2023-07-03T09:12:00+08:00", 1.0),
        ("1688346720000", "2023-07-03T09:12:00+08:00", 1.0),
        ("2023 07/ 03 09:12:00", "2023-07-03T09:12:00+08:00", 1.0),
    ],
)
def test_formats(text, iso, conf):
    assert parse_time(text) == (iso, conf)


def test_month_day_needs_a_year():
    assert parse_time("07-03 09:12") is None
    assert parse_time("07-03 09:12", year_hint=2023) == ("2023-07-03T09:12:00+08:00", 0.8)


def test_nothing_is_invented():
    for text in ("", "昨天", "2023年", "第2023期", "2023-13-45 10:00", None):
        assert parse_time(text) is None


def test_year_from_path_and_find_times():
    assert year_from_path("www.x.cn/2023/0703/1.html") == 2023
    assert year_from_path("http://x.cn/local/2024-05/26/c_1.htm") == 2024
    assert find_times("来源：新华网　2023-10-06 22:16:14　阅读：3331") == [("2023-10-06T22:16:14+08:00", 1.0)]
