//! The conversation the session holds: its items in order, and for assistant audio items how
//! much audio was produced (what `conversation.item.truncate` is checked against).

use serde_json::Value;

use crate::audio::AudioFormat;

/// One item.
#[derive(Debug, Clone)]
pub(crate) struct ConvItem {
    /// `item_…`.
    pub id: String,
    /// The item as last reported.
    pub item: Value,
    /// Assistant audio produced for content 0, in bytes of `format` (0 for other items).
    pub audio_bytes: usize,
    /// Format of that audio.
    pub format: AudioFormat,
    /// Whether this is an assistant message with audio output.
    pub assistant_audio: bool,
}

impl ConvItem {
    /// A non-audio item.
    pub(crate) fn plain(id: String, item: Value) -> Self {
        Self { id, item, audio_bytes: 0, format: AudioFormat::Pcmu, assistant_audio: false }
    }

    /// Milliseconds of assistant audio.
    pub(crate) fn audio_ms(&self) -> u64 {
        self.format.ms_of(self.audio_bytes)
    }
}

/// Items in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Conversation {
    items: Vec<ConvItem>,
}

impl Conversation {
    /// The id of the last item.
    pub(crate) fn last_id(&self) -> Option<String> {
        self.items.last().map(|i| i.id.clone())
    }

    /// The item with `id`.
    pub(crate) fn get(&self, id: &str) -> Option<&ConvItem> {
        self.items.iter().find(|i| i.id == id)
    }

    /// The item with `id`, mutable.
    pub(crate) fn get_mut(&mut self, id: &str) -> Option<&mut ConvItem> {
        self.items.iter_mut().find(|i| i.id == id)
    }

    /// Appends an item.
    pub(crate) fn push(&mut self, item: ConvItem) {
        self.items.push(item);
    }

    /// Inserts after the item `after` (which must exist).
    pub(crate) fn insert_after(&mut self, after: &str, item: ConvItem) {
        let at = self.items.iter().position(|i| i.id == after).map_or(self.items.len(), |p| p + 1);
        self.items.insert(at, item);
    }

    /// Removes an item; false if absent.
    pub(crate) fn remove(&mut self, id: &str) -> bool {
        let before = self.items.len();
        self.items.retain(|i| i.id != id);
        self.items.len() != before
    }

    /// Whether a `function_call` item with this `call_id` exists.
    pub(crate) fn has_call(&self, call_id: &str) -> bool {
        self.items.iter().any(|i| i.item["type"] == "function_call" && i.item["call_id"] == call_id)
    }

    /// The latest `function_call_output`'s `output`, parsed (`None` if there is none or it is
    /// not JSON).
    pub(crate) fn last_output(&self) -> Option<Value> {
        let item = self.items.iter().rev().find(|i| i.item["type"] == "function_call_output")?;
        serde_json::from_str(item.item["output"].as_str()?).ok()
    }

    /// Whether any assistant audio was produced.
    pub(crate) fn has_assistant_audio(&self) -> bool {
        self.items.iter().any(|i| i.assistant_audio && i.audio_bytes > 0)
    }

    /// Number of items.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }
}
