//! Server-Sent Events, read as they arrive (the WHATWG HTML standard,
//! "9.2.6 Interpreting an event stream"): bytes in, whole events out, in
//! any split of the bytes. What a provider's events mean is its own module's.
//! Bounded: an event may hold at most `max_event` bytes (an image's base64
//! and its JSON); a larger one is an error before it can fill the memory.

/// One event: its `event:` name (`message` when none) and its `data:` lines
/// joined by `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub name: String,
    pub data: String,
}

/// An event stream being read.
pub struct Reader {
    pending: Vec<u8>,
    /// How far `pending` is known to hold no blank line (each byte is
    /// looked at once, not once per chunk: an event of megabytes comes in
    /// hundreds of chunks).
    searched: usize,
    max_event: usize,
}

impl Reader {
    pub fn new(max_event: usize) -> Reader {
        Reader { pending: Vec::new(), searched: 0, max_event }
    }

    /// The events `bytes` completes; `Err` when one grows past the bound.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Event>, String> {
        self.pending.extend_from_slice(bytes);
        let mut events = Vec::new();
        // A blank line is at most 4 bytes: it may begin 3 before the new ones.
        while let Some((end, gap)) = blank_line(&self.pending, self.searched.saturating_sub(3)) {
            let block: Vec<u8> = self.pending.drain(..end + gap).take(end).collect();
            events.extend(event(&String::from_utf8_lossy(&block)));
            self.searched = 0;
        }
        self.searched = self.pending.len();
        if self.pending.len() > self.max_event {
            return Err(format!("an event of more than {} bytes", self.max_event));
        }
        Ok(events)
    }
}

/// Where the first blank line (an event's end) at or after `from` is, and
/// its length: `\n\n`, `\r\n\r\n` or `\r\r`.
fn blank_line(bytes: &[u8], from: usize) -> Option<(usize, usize)> {
    (from..bytes.len()).find_map(|i| {
        let rest = &bytes[i..];
        if rest.starts_with(b"\r\n\r\n") {
            Some((i, 4))
        } else if rest.starts_with(b"\n\n") || rest.starts_with(b"\r\r") {
            Some((i, 2))
        } else {
            None
        }
    })
}

/// The event a block of lines is; `None` for one with no data (a comment,
/// a keep-alive).
fn event(block: &str) -> Option<Event> {
    let mut name = String::from("message");
    let mut data: Vec<&str> = Vec::new();
    for line in block.split(['\n', '\r']).filter(|l| !l.is_empty() && !l.starts_with(':')) {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => name = value.to_string(),
            "data" => data.push(value),
            _ => {}
        }
    }
    (!data.is_empty()).then(|| Event { name, data: data.join("\n") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_out_whole_however_the_bytes_are_split() {
        let stream = b": keep-alive\n\nevent: one\ndata: {\"a\":1}\n\nevent: two\r\ndata: x\r\ndata: y\r\n\r\ndata: plain\n\n";
        let expected = vec![
            Event { name: "one".into(), data: "{\"a\":1}".into() },
            Event { name: "two".into(), data: "x\ny".into() },
            Event { name: "message".into(), data: "plain".into() },
        ];
        for split in 1..stream.len() {
            let mut reader = Reader::new(1024);
            let mut got = reader.feed(&stream[..split]).unwrap();
            got.extend(reader.feed(&stream[split..]).unwrap());
            assert_eq!(got, expected, "split at {split}");
        }
    }

    #[test]
    fn an_event_past_the_bound_is_an_error() {
        let mut reader = Reader::new(16);
        assert!(reader.feed(b"data: 0123456789").is_ok());
        assert!(reader.feed(b"0123456789").is_err());
    }
}
