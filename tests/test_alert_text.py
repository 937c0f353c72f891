"""Alert texts and the shared formats they read in: ratios as percentages, money in 万/亿 or K/M/B, durations,
product names before SKU ids, chart axes in the room's units."""

from app.core.quantities import axis_ticks, elapsed, figure, share, signed_share


def test_ratios_read_as_percentages_as_short_as_they_stay_exact():
    assert share(0.95) == "95%" and share(0.938) == "93.8%" and share(0.601) == "60.1%"
    assert share(0.0042) == "0.42%" and share(1.25) == "125%" and share(None) == "—"
    assert signed_share(-0.38) == "−38%" and signed_share(0.25) == "+25%" and signed_share(-0.045) == "−4.5%"


def test_each_unit_reads_in_the_rooms_language():
    assert figure(0.9472, "ratio", "zh") == "94.7%"
    assert figure(177_500, "money", "zh", "CNY") == "¥17.75万" and figure(177_500, "money", "en", "CNY") == "¥177.5K"
    assert figure(2.5e9, "money", "en", "USD") == "$2.50B" and figure(3.2e8, "money", "zh", "CNY") == "¥3.20亿"
    assert figure(1670, "count", "en") == "1.67K" and figure(603, "count", "en") == "603"
    assert figure(0.0, "count", "zh") == "0"
    assert figure(-0.3, "change", "en") == "−30%"
    assert figure(156, "minutes", "zh") == "2小时36分" and figure(156, "minutes", "en") == "2 h 36 min"
    assert figure(3250.4, "number", "en") == "3,250" and figure(15.25, "number", "en") == "15.25"
    assert figure(None, "ratio", "en") == "—" and figure(float("nan"), "money", "en", "CNY") == "—"


def test_durations_count_seconds_in_each_language():
    assert elapsed(156, "zh") == "2分36秒" and elapsed(156, "en") == "2m 36s"
    assert elapsed(5, "zh") == "5秒" and elapsed(5, "en") == "5s"
    assert elapsed(3720, "zh") == "1小时02分" and elapsed(3720, "en") == "1h 02m"
    assert elapsed(2 * 86400 + 3 * 3600, "zh") == "2天3小时" and elapsed(-3, "en") == "0s"


def test_chart_axes_read_in_wan_and_yi_in_chinese_and_k_m_b_in_english():
    values, labels = axis_ticks(0, 5_000_000, "zh", "CNY")
    assert values == [0, 1_000_000, 2_000_000, 3_000_000, 4_000_000, 5_000_000]
    assert labels == ["¥0", "¥100万", "¥200万", "¥300万", "¥400万", "¥500万"]
    values, labels = axis_ticks(0, 230_000_000, "zh")
    assert values[-1] >= 230_000_000 and labels[1] == "5,000万" and labels[2] == "1亿" and "1.5亿" in labels
    assert axis_ticks(0, 12_500, "en")[1] == ["0", "2.5K", "5K", "7.5K", "10K", "12.5K"]
    assert axis_ticks(0, 0, "en")[1] == ["0", "0.2", "0.4", "0.6", "0.8", "1"]
    assert axis_ticks(0, float("nan"), "en") == ([], [])
