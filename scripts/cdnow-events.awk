# cdnow-events.awk -- CDNOW_sample.txt rows (id, customer, YYYYMMDD, CDs, dollars) as leadscore
# purchase events in JSON Lines, each at noon UTC of its day moved by
# `shift` days; customers get the prefix `prefix`.
function days_from_civil(y, m, d,    era, yoe, doy, doe) {
    y -= (m <= 2)
    era = int((y >= 0 ? y : y - 399) / 400)
    yoe = y - era * 400
    doy = int((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1
    doe = yoe * 365 + int(yoe / 4) - int(yoe / 100) + doy
    return era * 146097 + doe - 719468
}
NF >= 5 {
    day = days_from_civil(substr($3, 1, 4) + 0, substr($3, 5, 2) + 0, substr($3, 7, 2) + 0) + shift
    q = $4 + 0; if (q < 1) q = 1
    printf "{\"customer\":\"%s%s\",\"type\":\"purchase\",\"ts\":%.0f000,\"quantity\":%d,\"value\":%s}\n", prefix, $2, day * 86400 + 43200, q, $5
}
