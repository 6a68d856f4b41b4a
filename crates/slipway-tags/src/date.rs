//! The date formatter: moment.js format tokens (`YYYYMMDD-HHmmss`), as
//! metadata-action's `{{date}}` takes them.

pub(super) const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
pub(super) const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Formats a time with moment.js tokens, as metadata-action's `{{date}}`:
/// `YYYY YY Q MMMM MMM MM M DDDD DDD DD Do D dddd ddd dd d WW W HH H hh h kk
/// k mm m ss s SSS SS S A a ZZ Z X x`, `[literal]`; other characters pass
/// through.
pub fn format_moment(time: &jiff::Zoned, format: &str) -> String {
    const TOKENS: [&str; 36] = [
        "YYYY", "YY", "Q", "MMMM", "MMM", "MM", "M", "DDDD", "DDD", "Do", "DD", "D", "dddd", "ddd",
        "dd", "d", "WW", "W", "HH", "H", "hh", "h", "kk", "k", "mm", "m", "ss", "s", "SSS", "SS",
        "S", "A", "a", "ZZ", "Z", "X",
    ];
    let mut out = String::new();
    let mut rest = format;
    while let Some(c) = rest.chars().next() {
        if let Some(end) = rest.find(']').filter(|_| c == '[') {
            out.push_str(&rest[1..end]);
            rest = &rest[end + 1..];
            continue;
        }
        if rest.starts_with('x') {
            out.push_str(&time.timestamp().as_millisecond().to_string());
            rest = &rest[1..];
            continue;
        }
        let Some(token) = TOKENS.iter().find(|token| rest.starts_with(*token)) else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        };
        out.push_str(&moment_token(time, token));
        rest = &rest[token.len()..];
    }
    out
}

pub(super) fn moment_token(time: &jiff::Zoned, token: &str) -> String {
    let month = usize::try_from(time.month()).unwrap_or(1).clamp(1, 12);
    let weekday = usize::try_from(time.weekday().to_sunday_zero_offset()).unwrap_or(0);
    let hour12 = match time.hour() % 12 {
        0 => 12,
        h => h,
    };
    let offset = time.offset().seconds();
    let sign = if offset < 0 { '-' } else { '+' };
    let (oh, om) = (offset.abs() / 3600, offset.abs() % 3600 / 60);
    let millis = time.subsec_nanosecond() / 1_000_000;
    let day = time.day();
    match token {
        "YYYY" => format!("{:04}", time.year()),
        "YY" => format!("{:02}", time.year().rem_euclid(100)),
        "Q" => ((month - 1) / 3 + 1).to_string(),
        "MMMM" => MONTHS[month - 1].to_owned(),
        "MMM" => MONTHS[month - 1][..3].to_owned(),
        "MM" => format!("{month:02}"),
        "M" => month.to_string(),
        "DDDD" => format!("{:03}", time.day_of_year()),
        "DDD" => time.day_of_year().to_string(),
        "Do" => {
            let suffix = match (day % 10, day % 100) {
                (_, 11..=13) => "th",
                (1, _) => "st",
                (2, _) => "nd",
                (3, _) => "rd",
                _ => "th",
            };
            format!("{day}{suffix}")
        }
        "DD" => format!("{day:02}"),
        "D" => day.to_string(),
        "dddd" => WEEKDAYS[weekday].to_owned(),
        "ddd" => WEEKDAYS[weekday][..3].to_owned(),
        "dd" => WEEKDAYS[weekday][..2].to_owned(),
        "d" => weekday.to_string(),
        "WW" => format!("{:02}", time.date().iso_week_date().week()),
        "W" => time.date().iso_week_date().week().to_string(),
        "HH" => format!("{:02}", time.hour()),
        "H" => time.hour().to_string(),
        "hh" => format!("{hour12:02}"),
        "h" => hour12.to_string(),
        "kk" => format!("{:02}", if time.hour() == 0 { 24 } else { time.hour() }),
        "k" => (if time.hour() == 0 { 24 } else { time.hour() }).to_string(),
        "mm" => format!("{:02}", time.minute()),
        "m" => time.minute().to_string(),
        "ss" => format!("{:02}", time.second()),
        "s" => time.second().to_string(),
        "SSS" => format!("{millis:03}"),
        "SS" => format!("{:02}", millis / 10),
        "S" => (millis / 100).to_string(),
        "A" => (if time.hour() < 12 { "AM" } else { "PM" }).to_owned(),
        "a" => (if time.hour() < 12 { "am" } else { "pm" }).to_owned(),
        "ZZ" => format!("{sign}{oh:02}{om:02}"),
        "Z" => format!("{sign}{oh:02}:{om:02}"),
        "X" => time.timestamp().as_second().to_string(),
        _ => token.to_owned(),
    }
}
