//! The human log line, written without colours: what tracing-subscriber's
//! default format writes for ozmint's events (which have no spans), in
//! less than half its instructions (callgrind: 12.2k per request line
//! with the default format, 5.5k with this one).
//!
//! `2026-12-06T20:59:06.883832Z  INFO ozmint::http: request request_id=65aa27d317b035ff
//! peer=127.0.0.1:37142 method=GET route="/readyz" status=200 latency_us=38`
//! (one line): the timestamp, the level right-aligned in five columns, the
//! target, the message, then each field as `name=value`, strings and
//! `Debug` values as `Debug` writes them, `%` (Display) values as `Display`
//! writes them (an error given as `&dyn Error` would lose the default
//! format's `error.sources`; ozmint logs errors with `%`). The default
//! format walks the span scope and paints every part through no-op styles;
//! with one line per request, its line was about 5% of a temporary-token
//! mint's CPU (perf). The timestamp's date and time of day are worked out
//! (by the `time` crate) once a second per thread, not once a line: that
//! had been a third of the line's instructions here. On a terminal the
//! default format (with colours) is used instead.

use std::cell::RefCell;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The plain event format (see the module docs).
pub struct PlainLine;

impl<S, N> FormatEvent<S, N> for PlainLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write_timestamp(&mut writer, SystemTime::now())?;
        let meta = event.metadata();
        write!(writer, " {:>5} {}: ", meta.level(), meta.target())?;
        let mut fields = Fields {
            writer: &mut writer,
            first: true,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_char('\n')
    }
}

/// The second a thread last wrote, and its `YYYY-MM-DDTHH:MM:SS`.
struct Second {
    unix: u64,
    text: String,
}

thread_local! {
    static SECOND: RefCell<Option<Second>> = const { RefCell::new(None) };
}

/// `at` as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC, microseconds), as the default
/// format writes it; the part up to the seconds is kept per thread for as
/// long as the second lasts.
fn write_timestamp(writer: &mut Writer<'_>, at: SystemTime) -> fmt::Result {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let unix = since.as_secs();
    SECOND.with(|cell| {
        let mut cell = cell.borrow_mut();
        let second = match cell.as_mut() {
            Some(s) if s.unix == unix => s,
            _ => cell.insert(Second {
                unix,
                text: date_and_time(unix),
            }),
        };
        write!(writer, "{}.{:06}Z", second.text, since.subsec_micros())
    })
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix time (UTC).
fn date_and_time(unix: u64) -> String {
    let t = i64::try_from(unix)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Writes an event's fields, space-separated, the message bare.
struct Fields<'w, 'a> {
    writer: &'w mut Writer<'a>,
    first: bool,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    /// The separator and `name=` of a field (nothing but the separator for
    /// the message); false for a field not to be written.
    fn start(&mut self, field: &Field) -> bool {
        let name = field.name();
        if self.result.is_err() || name.starts_with("log.") {
            return false;
        }
        if !self.first {
            self.result = self.writer.write_char(' ');
        }
        self.first = false;
        if name != "message" {
            let name = name.strip_prefix("r#").unwrap_or(name);
            self.result = self
                .result
                .and_then(|()| self.writer.write_str(name))
                .and_then(|()| self.writer.write_char('='));
        }
        self.result.is_ok()
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.start(field) {
            self.result = if field.name() == "message" {
                self.writer.write_str(value)
            } else {
                write!(self.writer, "{value:?}")
            };
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.start(field) {
            self.result = write!(self.writer, "{value}");
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.start(field) {
            self.result = write!(self.writer, "{value}");
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.start(field) {
            self.result = write!(self.writer, "{value}");
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.start(field) {
            self.result = write!(self.writer, "{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    /// What `log` writes through a subscriber with this format (`plain`)
    /// or the default one, without colours.
    fn lines(plain: bool, log: impl Fn()) -> String {
        let out = Captured::default();
        let builder = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(out.clone());
        if plain {
            tracing::subscriber::with_default(builder.event_format(PlainLine).finish(), log);
        } else {
            tracing::subscriber::with_default(builder.finish(), log);
        }
        let bytes = out.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    /// Drops the timestamp (the first word) of every line.
    fn untimed(text: &str) -> Vec<String> {
        text.lines()
            .map(|l| l.split_once(' ').expect("a timestamp").1.to_owned())
            .collect()
    }

    #[test]
    fn writes_what_the_default_format_writes() {
        let events = || {
            let peer: std::net::SocketAddr = "127.0.0.1:4000".parse().unwrap();
            tracing::info!(
                request_id = %"65aa27d317b035ff",
                peer = %peer,
                method = %"GET",
                route = "/readyz",
                status = 200u16,
                latency_us = 38u64,
                "request"
            );
            tracing::warn!(
                r#type = "x",
                ok = true,
                delta = -3i64,
                "a \"quoted\" message"
            );
            tracing::error!(error = %std::io::Error::other("disk on fire"), "store failed");
            tracing::debug!(list = ?[1, 2], "debug {} args", 7);
            tracing::info!("no fields");
            tracing::info!(only = 1u64);
        };
        let ours = lines(true, events);
        let theirs = lines(false, events);
        assert_eq!(
            untimed(&ours),
            untimed(&theirs),
            "ours:\n{ours}\ntheirs:\n{theirs}"
        );
        assert_eq!(
            ours.lines().count(),
            5,
            "debug is filtered out at info:\n{ours}"
        );
        let first = ours.lines().next().unwrap();
        assert!(
            first.ends_with(
                "  INFO ozmint::log_format::tests: request request_id=65aa27d317b035ff \
                 peer=127.0.0.1:4000 method=GET route=\"/readyz\" status=200 latency_us=38"
            ),
            "{first}"
        );
        // The shape of the default format's timestamp (its values: below).
        let ours = first.split_once(' ').unwrap().0;
        let theirs = theirs.lines().next().unwrap().split_once(' ').unwrap().0;
        let shape = |t: &str| {
            t.bytes()
                .map(|b| if b.is_ascii_digit() { b'0' } else { b })
                .collect::<Vec<u8>>()
        };
        assert_eq!(shape(ours), shape(theirs), "{ours} {theirs}");
    }

    fn stamp(at: SystemTime) -> String {
        let mut out = String::new();
        write_timestamp(&mut Writer::new(&mut out), at).unwrap();
        out
    }

    #[test]
    fn timestamps_are_utc_with_microseconds_across_seconds_and_days() {
        use std::time::Duration;
        let at =
            |secs: u64, micros: u64| UNIX_EPOCH + Duration::from_micros(secs * 1_000_000 + micros);
        assert_eq!(stamp(at(0, 0)), "1970-01-01T00:00:00.000000Z");
        assert_eq!(stamp(at(951_782_400, 7)), "2000-02-29T00:00:00.000007Z");
        // The kept second is not reused for the next one, nor the next day.
        assert_eq!(
            stamp(at(1_796_677_147, 999_999)),
            "2026-12-07T20:59:07.999999Z"
        );
        assert_eq!(stamp(at(1_796_677_148, 0)), "2026-12-07T20:59:08.000000Z");
        assert_eq!(
            stamp(at(1_796_677_148, 123_456)),
            "2026-12-07T20:59:08.123456Z"
        );
        assert_eq!(
            stamp(at(4_102_444_799, 500_000)),
            "2099-12-31T23:59:59.500000Z"
        );
        assert_eq!(stamp(at(4_102_444_800, 0)), "2100-01-01T00:00:00.000000Z");
        // Back in time (a clock set back) is formatted anew too.
        assert_eq!(stamp(at(0, 1)), "1970-01-01T00:00:00.000001Z");
    }
}
