//! The providers' usage rules: which counts a response reports and where.
//!
//! Usage is found wherever a `usage` object sits (OpenAI's chat
//! completions, completions, embeddings and Responses API, Anthropic's
//! Messages, each as JSON or as server-sent events), the last value of each
//! count winning, as streams report cumulative counts. [`UsageFinder`]
//! reads the tokens of [`crate::json::Tokenizer`] for them.

use crate::json::{Events, Kind};

/// Token counts a response reported; `None` where it said nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Every input token, cached ones included (Anthropic's cache reads and
    /// writes are added to its `input_tokens`, which leaves them out).
    pub input: Option<u64>,
    pub output: Option<u64>,
    /// Input tokens read from the provider's prompt cache.
    pub cached_input: Option<u64>,
    /// Output tokens spent on reasoning (a part of `output`).
    pub reasoning_output: Option<u64>,
}

/// The counts as reported, before the shapes are told apart.
#[derive(Debug, Clone, Copy, Default)]
struct Reported {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cached_tokens: Option<u64>,
    cache_read: Option<u64>,
    cache_creation: Option<u64>,
    reasoning_tokens: Option<u64>,
}

impl Reported {
    fn set(&mut self, field: Field, value: u64) {
        let slot = match field {
            Field::PromptTokens => &mut self.prompt_tokens,
            Field::CompletionTokens => &mut self.completion_tokens,
            Field::InputTokens => &mut self.input_tokens,
            Field::OutputTokens => &mut self.output_tokens,
            Field::CachedTokens => &mut self.cached_tokens,
            Field::CacheRead => &mut self.cache_read,
            Field::CacheCreation => &mut self.cache_creation,
            Field::ReasoningTokens => &mut self.reasoning_tokens,
        };
        *slot = Some(value);
    }

    fn usage(&self) -> Usage {
        // Anthropic's `input_tokens` leaves out what its cache fields count.
        let anthropic = self.cache_read.is_some() || self.cache_creation.is_some();
        let input = self.prompt_tokens.or_else(|| {
            let input = self.input_tokens?;
            Some(if anthropic {
                input
                    .saturating_add(self.cache_read.unwrap_or(0))
                    .saturating_add(self.cache_creation.unwrap_or(0))
            } else {
                input
            })
        });
        Usage {
            input,
            output: self.completion_tokens.or(self.output_tokens),
            cached_input: self.cached_tokens.or(self.cache_read),
            reasoning_output: self.reasoning_tokens,
        }
    }
}

/// A count inside a `usage` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    PromptTokens,
    CompletionTokens,
    InputTokens,
    OutputTokens,
    /// `{prompt,input}_tokens_details.cached_tokens`
    CachedTokens,
    /// `cache_read_input_tokens` (Anthropic)
    CacheRead,
    /// `cache_creation_input_tokens` (Anthropic)
    CacheCreation,
    /// `{completion,output}_tokens_details.reasoning_tokens`
    ReasoningTokens,
}

/// The details objects inside `usage`, by the count they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Details {
    Cached,
    Reasoning,
}

/// What the member whose value comes next means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyMeaning {
    Other,
    /// `usage`, at any depth outside another `usage`.
    Usage,
    Count(Field),
    Details(Details),
}

/// Where a document's counts are: the `usage` and details objects open.
#[derive(Debug, Clone, Copy)]
struct Place {
    member: KeyMeaning,
    /// The depth of the members of the `usage` object being read (0: none).
    usage_depth: u8,
    /// The depth of the members of the details object being read (0: none).
    details_depth: u8,
    details: Details,
    /// The count the number being read goes to.
    number_field: Option<Field>,
}

impl Default for Place {
    fn default() -> Place {
        Place {
            member: KeyMeaning::Other,
            usage_depth: 0,
            details_depth: 0,
            details: Details::Cached,
            number_field: None,
        }
    }
}

/// Reads the counts out of one response's documents (one, or one per event).
#[derive(Debug, Default)]
pub struct UsageFinder {
    place: Place,
    reported: Reported,
}

impl UsageFinder {
    /// The counts found so far.
    pub fn usage(&self) -> Usage {
        self.reported.usage()
    }

    /// The next event's document starts: the counts found so far stand.
    pub fn next_document(&mut self) {
        self.place = Place::default();
    }

    /// What a key means where it stands.
    fn meaning(&self, key: &[u8], around: u8) -> KeyMeaning {
        let place = &self.place;
        if around == place.details_depth {
            return match (place.details, key) {
                (Details::Cached, b"cached_tokens") => KeyMeaning::Count(Field::CachedTokens),
                (Details::Reasoning, b"reasoning_tokens") => KeyMeaning::Count(Field::ReasoningTokens),
                _ => KeyMeaning::Other,
            };
        }
        if around == place.usage_depth {
            return match key {
                b"prompt_tokens" => KeyMeaning::Count(Field::PromptTokens),
                b"completion_tokens" => KeyMeaning::Count(Field::CompletionTokens),
                b"input_tokens" => KeyMeaning::Count(Field::InputTokens),
                b"output_tokens" => KeyMeaning::Count(Field::OutputTokens),
                b"cache_read_input_tokens" => KeyMeaning::Count(Field::CacheRead),
                b"cache_creation_input_tokens" => KeyMeaning::Count(Field::CacheCreation),
                b"prompt_tokens_details" | b"input_tokens_details" => KeyMeaning::Details(Details::Cached),
                b"completion_tokens_details" | b"output_tokens_details" => KeyMeaning::Details(Details::Reasoning),
                _ => KeyMeaning::Other,
            };
        }
        match key {
            b"usage" if place.usage_depth == 0 => KeyMeaning::Usage,
            _ => KeyMeaning::Other,
        }
    }
}

impl Events for UsageFinder {
    #[inline]
    fn key(&mut self, key: Option<&[u8]>, around: u8) {
        self.place.member = key.map_or(KeyMeaning::Other, |key| self.meaning(key, around));
    }

    #[inline]
    fn value(&mut self, kind: Kind, around: u8) {
        let place = &mut self.place;
        let member = std::mem::replace(&mut place.member, KeyMeaning::Other);
        match (kind, member) {
            (Kind::Object, KeyMeaning::Usage) => place.usage_depth = around + 1,
            (Kind::Object, KeyMeaning::Details(details)) => {
                place.details_depth = around + 1;
                place.details = details;
            }
            (Kind::Number, KeyMeaning::Count(field)) => place.number_field = Some(field),
            (Kind::Number, _) => place.number_field = None,
            _ => {}
        }
    }

    #[inline]
    fn number(&mut self, value: Option<u64>) {
        if let (Some(field), Some(value)) = (self.place.number_field, value) {
            self.reported.set(field, value);
        }
    }

    #[inline]
    fn close(&mut self, around: u8) {
        let place = &mut self.place;
        if around == place.details_depth {
            place.details_depth = 0;
        }
        if around == place.usage_depth {
            place.usage_depth = 0;
        }
    }
}
