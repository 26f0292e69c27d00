//! Clocks at a line's start, as runners and loggers print them: ISO and bare timestamps, with
//! an offset or TensorFlow's colon, syslog's month and day, and what GitLab names after its
//! clock (the stream). `prefix.rs` reads them through like any other prefix.

/// A bare timestamp: `2024-05-01T12:00:00.1234567Z `, `2024-05-01 12:00:00,123 `,
/// `12:00:00 ` (a clock alone), followed by spaces and an optional ` - ` or ` | ` separator.
pub(super) fn timestamp(line: &str) -> Option<&str> {
    let b = line.as_bytes();
    let digits = |from: usize, n: usize| {
        b.len() >= from + n && b[from..from + n].iter().all(u8::is_ascii_digit)
    };
    let mut at = 0;
    if digits(0, 4)
        && b.get(4) == Some(&b'-')
        && digits(5, 2)
        && b.get(7) == Some(&b'-')
        && digits(8, 2)
    {
        at = 10;
        if matches!(b.get(10), Some(b'T' | b' ')) {
            at = 11;
        }
    }
    // A clock's hour may have one digit (`9:28:32`).
    let hour = if at == 0 && digits(0, 1) && b.get(1) == Some(&b':') {
        1
    } else {
        2
    };
    if !(digits(at, hour)
        && b.get(at + hour) == Some(&b':')
        && digits(at + hour + 1, 2)
        && b.get(at + hour + 3) == Some(&b':')
        && digits(at + hour + 4, 2))
    {
        return None;
    }
    at += hour + 6;
    if matches!(b.get(at), Some(b'.' | b',')) {
        at += 1;
        at += b[at..].iter().take_while(|c| c.is_ascii_digit()).count();
    }
    if b.get(at) == Some(&b'Z') {
        at += 1;
    } else if matches!(b.get(at), Some(b'+' | b'-')) && digits(at + 1, 2) {
        at += 3;
        at += usize::from(b.get(at) == Some(&b':'));
        at += b[at..]
            .iter()
            .take(2)
            .take_while(|c| c.is_ascii_digit())
            .count();
    }
    // TensorFlow's and absl's clock ends with a colon: `2018-06-06 15:26:54.882302: `.
    let after = &line[at..];
    let after = after.strip_prefix(':').unwrap_or(after);
    let rest = after.strip_prefix(' ')?.trim_start_matches(' ');
    let rest = gitlab_stream(rest).unwrap_or(rest);
    Some(
        rest.strip_prefix("- ")
            .or_else(|| rest.strip_prefix("| "))
            .unwrap_or(rest),
    )
}

/// GitLab's timestamped logs name the stream after the clock: `01O ` (stdout), `00E+ ` (stderr,
/// a line continued).
pub(super) fn gitlab_stream(rest: &str) -> Option<&str> {
    // Bytes, not characters: the text after a clock may open with any character (`├──`).
    let tag = rest.as_bytes().get(..3)?;
    if !(tag[..2].iter().all(u8::is_ascii_hexdigit) && matches!(tag[2], b'O' | b'E')) {
        return None;
    }
    let after = &rest[3..];
    let after = after.strip_prefix('+').unwrap_or(after);
    (after.is_empty() || after.starts_with(' ')).then(|| after.strip_prefix(' ').unwrap_or(after))
}

/// syslog's and CircleCI's clock: `Jan 07 20:36:55 `.
pub(super) fn month_day_clock(line: &str) -> Option<&str> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().find(|m| line.starts_with(*m))?;
    let rest = line[month.len()..]
        .strip_prefix(' ')?
        .trim_start_matches(' ');
    let day = rest.bytes().take_while(u8::is_ascii_digit).count();
    if !(1..=2).contains(&day) {
        return None;
    }
    timestamp(rest[day..].strip_prefix(' ')?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_tag_is_read_and_any_other_text_is_left_whole() {
        assert_eq!(gitlab_stream("01O ___ test_x ___"), Some("___ test_x ___"));
        assert_eq!(gitlab_stream("00E+ more"), Some("more"));
        for other in ["├── tests/a.py", "é", "0├x", "01", "FAILED x"] {
            assert_eq!(gitlab_stream(other), None, "{other}");
        }
    }
}
