//! Server-sent events framing (`text/event-stream`): lines ended by LF, CR
//! or CRLF, an event ended by a blank line, its `data` lines joined by LF.
//! The parser is fed pieces split at any byte and keeps only its place in
//! the current line; what the data says is its reader's business.

/// What a [`Parser`] hands over. Offsets are into the piece being fed.
pub trait Fields {
    /// Bytes of a `data` line from where they start in the piece: read up
    /// to the first CR or LF and say how many were read (all of `bytes`
    /// when no line end is among them).
    fn data(&mut self, bytes: &[u8]) -> usize;
    /// A `data` line ended (a next one of the same event joins it after an LF).
    fn data_line_end(&mut self);
    /// The event ended just before `at`; the next one starts there.
    fn event_end(&mut self, at: usize);
}

/// Where the parser is in its line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum LineState {
    /// At the start of a line (a line end here ends the event).
    #[default]
    Start,
    /// Reading a field name: this many bytes of `data` matched.
    Name(u8),
    /// Just after `data:` (one space may follow).
    DataStart,
    Data,
    /// Another field or a comment: skipped.
    Skip,
}

/// The event-stream parser.
#[derive(Debug, Default)]
pub struct Parser {
    line: LineState,
    /// The last byte was a CR: an LF now belongs to the same line end.
    after_cr: bool,
    /// A blank line ended with CR: the event ends after a following LF, or
    /// before any other byte.
    end_pending: bool,
}

impl Parser {
    /// Reads the next piece of the stream.
    pub fn feed(&mut self, piece: &[u8], fields: &mut impl Fields) {
        let mut pos = 0;
        while let Some(&b) = piece.get(pos) {
            if self.end_pending {
                self.end_pending = false;
                let at = if b == b'\n' { pos + 1 } else { pos };
                fields.event_end(at);
                if b == b'\n' {
                    self.after_cr = false;
                    pos += 1;
                    continue;
                }
            }
            if std::mem::take(&mut self.after_cr) && b == b'\n' {
                pos += 1;
                continue;
            }
            pos = self.byte(piece, pos, fields);
        }
    }

    /// Reads at `pos` (a byte that is not the LF of a CRLF); returns where to go on.
    fn byte(&mut self, piece: &[u8], pos: usize, fields: &mut impl Fields) -> usize {
        let Some(&b) = piece.get(pos) else {
            return pos + 1;
        };
        match (self.line, b) {
            (LineState::Start, b'\r') => {
                self.after_cr = true;
                self.end_pending = true;
            }
            (LineState::Start, b'\n') => fields.event_end(pos + 1),
            (_, b'\r' | b'\n') => {
                if self.line == LineState::Data {
                    fields.data_line_end();
                }
                self.after_cr = b == b'\r';
                self.line = LineState::Start;
            }
            (LineState::Start, b'd') => self.line = LineState::Name(1),
            (LineState::Start, _) => self.line = LineState::Skip,
            (LineState::Name(4), b':') => self.line = LineState::DataStart,
            (LineState::Name(matched), _) => {
                self.line = if b"data".get(usize::from(matched)) == Some(&b) {
                    LineState::Name(matched + 1)
                } else {
                    LineState::Skip
                };
            }
            (LineState::DataStart, b' ') => self.line = LineState::Data,
            (LineState::DataStart | LineState::Data, _) => {
                self.line = LineState::Data;
                return pos + fields.data(piece.get(pos..).unwrap_or_default());
            }
            (LineState::Skip, _) => return line_end(piece, pos),
        }
        pos + 1
    }
}

/// The offset of the first CR or LF in `bytes` at or after `from` (or its length).
pub fn line_end(bytes: &[u8], from: usize) -> usize {
    let rest = bytes.get(from..).unwrap_or_default();
    from + rest
        .iter()
        .position(|&c| c == b'\r' || c == b'\n')
        .unwrap_or(rest.len())
}
