//! Typed, borrowing views of one trace event, for analyses that only read a few fields.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::fastscan::{self, Member};

/// A `pid`, `tid` or flow `id`: traces use integers, strings (`"Spans"`, `""`) and sometimes
/// floats.
#[derive(Debug, Clone, PartialEq)]
pub enum Id<'a> {
    /// An integer id (the common case).
    Int(i64),
    /// A non-integer number (rare; kept as written).
    Float(f64),
    /// A string id such as `"Spans"`.
    Str(Cow<'a, str>),
}

impl Id<'_> {
    /// The integer value, if this id is an integer.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Id::Int(v) => Some(*v),
            _ => None,
        }
    }

    /// An owned copy.
    pub fn to_owned_id(&self) -> Id<'static> {
        match self {
            Id::Int(v) => Id::Int(*v),
            Id::Float(v) => Id::Float(*v),
            Id::Str(s) => Id::Str(Cow::Owned(s.to_string())),
        }
    }
}

impl fmt::Display for Id<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Int(v) => write!(f, "{v}"),
            Id::Float(v) => write!(f, "{v}"),
            Id::Str(s) => write!(f, "{s}"),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Id<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Id<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a string id")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Id::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                match i64::try_from(v) {
                    Ok(i) => Ok(Id::Int(i)),
                    Err(_) => Ok(Id::Float(v as f64)),
                }
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Id::Float(v))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Id::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Id::Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Id::Str(Cow::Owned(v)))
            }
        }
        d.deserialize_any(V)
    }
}

/// A time in integer nanoseconds, parsed from a JSON number of microseconds.
///
/// Integer `ts` (legacy Kineto: epoch µs) converts exactly; float `ts` (newer Kineto: µs with ns
/// precision) is rounded to the nearest ns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Nanos(pub i64);

impl<'de> Deserialize<'de> for Nanos {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Nanos;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of microseconds")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Nanos, E> {
                v.checked_mul(1000)
                    .map(Nanos)
                    .ok_or_else(|| E::custom(format!("time {v} µs is out of range")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Nanos, E> {
                i64::try_from(v)
                    .ok()
                    .and_then(|v| v.checked_mul(1000))
                    .map(Nanos)
                    .ok_or_else(|| E::custom(format!("time {v} µs is out of range")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Nanos, E> {
                let ns = (v * 1000.0).round();
                if ns.is_finite() && ns.abs() < 9.0e18 {
                    Ok(Nanos(ns as i64))
                } else {
                    Err(E::custom(format!("time {v} µs is out of range")))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// The fields of an event that the analyses read; everything else is skipped while parsing.
#[derive(Debug, Deserialize)]
pub struct EventView<'a> {
    /// Event name (kernel, op or span name); empty if absent.
    #[serde(borrow, default)]
    pub name: Cow<'a, str>,
    /// Category (`kernel`, `cpu_op`, `gpu_memcpy`...).
    #[serde(borrow, default)]
    pub cat: Option<Cow<'a, str>>,
    /// Phase (`X`, `M`, `s`, `f`, `i`...).
    #[serde(borrow, default)]
    pub ph: Cow<'a, str>,
    /// Start time.
    #[serde(default)]
    pub ts: Option<Nanos>,
    /// Duration of complete (`X`) events.
    #[serde(default)]
    pub dur: Option<Nanos>,
    /// Process id.
    #[serde(borrow, default)]
    pub pid: Option<Id<'a>>,
    /// Thread id (the stream for GPU events).
    #[serde(borrow, default)]
    pub tid: Option<Id<'a>>,
    /// Flow / async id.
    #[serde(borrow, default)]
    pub id: Option<Id<'a>>,
    /// Raw `args`, parsed on demand.
    #[serde(borrow, default)]
    pub args: Option<RawArgs<'a>>,
}

/// The raw JSON text of an event's `args`, borrowed from the event (parsed on demand).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawArgs<'a>(&'a str);

impl<'a> RawArgs<'a> {
    /// The JSON text.
    pub fn get(&self) -> &'a str {
        self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawArgs<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&'de RawValue>::deserialize(d).map(|r| RawArgs(r.get()))
    }
}

/// The `args` fields of GPU and runtime events used to link them.
#[derive(Debug, Default, Deserialize)]
pub struct LinkArgs {
    /// CUPTI/roctracer correlation id (links a launch to its kernel).
    #[serde(default)]
    pub correlation: Option<i64>,
    /// GPU stream.
    #[serde(default)]
    pub stream: Option<i64>,
    /// GPU device.
    #[serde(default)]
    pub device: Option<i64>,
}

impl EventView<'_> {
    /// The category, or "" when absent.
    pub fn category(&self) -> &str {
        self.cat.as_deref().unwrap_or("")
    }

    /// End time of a complete event (`ts + dur`).
    pub fn end(&self) -> Option<Nanos> {
        match (self.ts, self.dur) {
            (Some(t), Some(d)) => Some(Nanos(t.0.saturating_add(d.0))),
            _ => None,
        }
    }

    /// Parses the link fields of `args` (missing or malformed args give defaults).
    pub fn link_args(&self) -> LinkArgs {
        self.args
            .and_then(|a| serde_json::from_str(a.get()).ok())
            .unwrap_or_default()
    }

    /// True for GPU activity: complete events of category kernel, gpu_memcpy or gpu_memset.
    pub fn is_gpu(&self) -> bool {
        self.ph == "X" && is_gpu_category(self.category())
    }
}

/// GPU activity categories (Kineto names, plus the legacy `Kernel`).
pub fn is_gpu_category(cat: &str) -> bool {
    matches!(cat, "kernel" | "gpu_memcpy" | "gpu_memset" | "Kernel")
}

/// Parses raw event bytes into views, tolerating invalid UTF-8 (replaced, and counted).
#[derive(Debug, Default)]
pub struct EventParser {
    scratch: String,
    /// Events whose bytes were not valid UTF-8 and were read with replacement characters.
    pub invalid_utf8: u64,
}

impl EventParser {
    /// Checks one event by the rule every command applies (`trace summary`, `ranks`, `trim`,
    /// `merge`): `name`, `cat` and `ph` are strings, `ts` and `dur` are numbers of
    /// microseconds that fit in i64 nanoseconds, `pid`, `tid` and `id` are numbers or strings.
    /// `scanned` and `members` are as [`TraceReader::next_event_scanned`] gives them.
    /// The error says what is wrong; callers add the file and the event's index.
    ///
    /// [`TraceReader::next_event_scanned`]: crate::reader::TraceReader::next_event_scanned
    pub fn check(
        &mut self,
        raw: &[u8],
        scanned: bool,
        members: &[Member],
    ) -> Result<(), serde_json::Error> {
        if scanned {
            self.parse_scanned(raw, members).map(|_| ())
        } else {
            self.parse(raw).map(|_| ())
        }
    }

    /// Like [`parse`](Self::parse), for an event whose top-level members `members` were found
    /// by [`fastscan`] (which also validated it) and that is valid UTF-8, as
    /// [`TraceReader::next_event_scanned`](crate::reader::TraceReader::next_event_scanned)
    /// returns them with the flag set: when the fields have their usual forms (plain
    /// strings, integers, `null`) they are read directly from the spans; anything else goes
    /// through `parse`, so the result -- or the error -- is the same.
    pub fn parse_scanned<'a>(
        &'a mut self,
        raw: &'a [u8],
        members: &[Member],
    ) -> Result<EventView<'a>, serde_json::Error> {
        match view_from_members(raw, members) {
            Some(v) => Ok(v),
            None => self.parse(raw),
        }
    }

    /// Parses one event. Errors name what is wrong (e.g. "invalid type: string, expected a
    /// number of microseconds").
    pub fn parse<'a>(&'a mut self, raw: &'a [u8]) -> Result<EventView<'a>, serde_json::Error> {
        match serde_json::from_slice::<EventView<'a>>(raw) {
            Ok(v) => Ok(v),
            Err(e) => {
                if std::str::from_utf8(raw).is_ok() {
                    return Err(e);
                }
                self.invalid_utf8 += 1;
                self.scratch = String::from_utf8_lossy(raw).into_owned();
                serde_json::from_str::<EventView<'a>>(&self.scratch)
            }
        }
    }
}

/// Makes event bytes safe to copy into an output file: invalid UTF-8 is replaced.
pub fn sanitize(raw: &[u8]) -> Cow<'_, [u8]> {
    match std::str::from_utf8(raw) {
        Ok(_) => Cow::Borrowed(raw),
        Err(_) => Cow::Owned(String::from_utf8_lossy(raw).into_owned().into_bytes()),
    }
}

/// The view of a scanned event, read straight from its member spans; `None` when any field
/// needs serde's general handling (escapes, floats, duplicates, wrong types, invalid UTF-8).
fn view_from_members<'a>(raw: &'a [u8], members: &[Member]) -> Option<EventView<'a>> {
    // Invalid UTF-8 never gets here (serde_json checks it only in the strings it reads, and
    // `parse` falls back to a lossy copy; both are left to `parse`).
    debug_assert!(std::str::from_utf8(raw).is_ok());
    fn text(v: &[u8]) -> Option<Cow<'_, str>> {
        fastscan::plain_str(v).map(Cow::Borrowed)
    }
    fn nanos(v: &[u8]) -> Option<Option<Nanos>> {
        if v == b"null" {
            return Some(None);
        }
        match fastscan::small_uint(v) {
            Some(us) => us.checked_mul(1000).map(|ns| Some(Nanos(ns))),
            None => serde_json::from_slice::<Nanos>(v).ok().map(Some),
        }
    }
    fn id(v: &[u8]) -> Option<Option<Id<'_>>> {
        if v == b"null" {
            return Some(None);
        }
        if let Some(i) = fastscan::small_uint(v) {
            return Some(Some(Id::Int(i)));
        }
        if let Some(s) = fastscan::plain_str(v) {
            return Some(Some(Id::Str(Cow::Borrowed(s))));
        }
        serde_json::from_slice::<Id<'_>>(v).ok().map(Some)
    }
    let mut view = EventView {
        name: Cow::Borrowed(""),
        cat: None,
        ph: Cow::Borrowed(""),
        ts: None,
        dur: None,
        pid: None,
        tid: None,
        id: None,
        args: None,
    };
    let mut seen = 0u16;
    for m in members {
        let v = m.value(raw);
        let field = match m.key(raw) {
            b"name" => 0,
            b"cat" => 1,
            b"ph" => 2,
            b"ts" => 3,
            b"dur" => 4,
            b"pid" => 5,
            b"tid" => 6,
            b"id" => 7,
            b"args" => 8,
            _ => continue,
        };
        if seen & (1 << field) != 0 {
            // serde reports duplicate fields.
            return None;
        }
        seen |= 1 << field;
        match field {
            0 => view.name = text(v)?,
            1 => view.cat = if v == b"null" { None } else { Some(text(v)?) },
            2 => view.ph = text(v)?,
            3 => view.ts = nanos(v)?,
            4 => view.dur = nanos(v)?,
            5 => view.pid = id(v)?,
            6 => view.tid = id(v)?,
            7 => view.id = id(v)?,
            _ => {
                view.args = if v == b"null" {
                    None
                } else {
                    Some(RawArgs(std::str::from_utf8(v).ok()?))
                }
            }
        }
    }
    Some(view)
}
