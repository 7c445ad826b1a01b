//! Server-sent events, as chat-completion streams use them: `data:` lines, an empty line ending each event,
//! `:` comment lines as keep-alives (llama.cpp's server sends one every 30 s while it thinks).

/// Turns chunks of bytes into the `data` of each complete event. Bytes of a line split across chunks wait for
/// the rest; a line may end in `\n` or `\r\n`.
#[derive(Debug, Default)]
pub struct Decoder {
    line: Vec<u8>,
    data: Option<String>,
}

/// The longest line accepted: a chunk of a streamed answer is small; anything longer is not a chat stream.
pub const MAX_LINE: usize = 4 * 1024 * 1024;

impl Decoder {
    /// Feeds bytes; returns the events they completed, in order. Fails on a line over [`MAX_LINE`] or one that is
    /// not UTF-8.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<String>, String> {
        let mut events = Vec::new();
        for &b in bytes {
            if b != b'\n' {
                self.line.push(b);
                if self.line.len() > MAX_LINE {
                    return Err(format!("an event line over {MAX_LINE} bytes"));
                }
                continue;
            }
            if self.line.last() == Some(&b'\r') {
                self.line.pop();
            }
            let line = std::mem::take(&mut self.line);
            let line = String::from_utf8(line).map_err(|_| "an event line that is not UTF-8")?;
            if line.is_empty() {
                if let Some(data) = self.data.take() {
                    events.push(data);
                }
            } else if line.starts_with(':') {
                // A comment: a keep-alive.
            } else {
                let (field, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                if field == "data" {
                    match &mut self.data {
                        Some(data) => {
                            data.push('\n');
                            data.push_str(value);
                        }
                        None => self.data = Some(value.to_string()),
                    }
                }
                // `event`, `id` and `retry` carry nothing a chat stream needs.
            }
        }
        Ok(events)
    }

    /// The data of an event the stream ended without its closing empty line, if any.
    pub fn finish(&mut self) -> Option<String> {
        if !self.line.is_empty() {
            let line = String::from_utf8_lossy(&std::mem::take(&mut self.line)).into_owned();
            if let Some(value) = line.strip_prefix("data:") {
                let value = value.strip_prefix(' ').unwrap_or(value);
                match &mut self.data {
                    Some(data) => {
                        data.push('\n');
                        data.push_str(value);
                    }
                    None => self.data = Some(value.to_string()),
                }
            }
        }
        self.data.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_anywhere_come_out_whole_and_comments_are_skipped() {
        let stream =
            b": ping\n\ndata: {\"a\":1}\r\n\r\ndata: line one\ndata: line two\n\ndata: [DONE]\n\n";
        for split in 0..stream.len() {
            let mut decoder = Decoder::default();
            let mut events = decoder.feed(&stream[..split]).expect("feed");
            events.extend(decoder.feed(&stream[split..]).expect("feed"));
            assert_eq!(
                events,
                vec!["{\"a\":1}", "line one\nline two", "[DONE]"],
                "split at {split}"
            );
            assert_eq!(decoder.finish(), None);
        }
    }

    #[test]
    fn an_unterminated_last_event_is_returned_by_finish() {
        let mut decoder = Decoder::default();
        assert!(decoder.feed(b"data: partial").expect("feed").is_empty());
        assert_eq!(decoder.finish().as_deref(), Some("partial"));
    }

    #[test]
    fn a_line_that_is_not_utf8_is_an_error() {
        let mut decoder = Decoder::default();
        assert!(decoder.feed(b"data: \xff\xfe\n").is_err());
    }
}
