//! The memory store's search index: the jobs found by each word, and each job's words (to take
//! a job out once neither it nor its history record is here).

use crate::job::JobId;
use crate::search::{MAX_PREFIX_WORDS, Search};
use std::collections::{BTreeMap, HashMap, HashSet};

#[derive(Default)]
pub struct Words {
    jobs_of: BTreeMap<String, HashSet<JobId>>,
    words_of: HashMap<JobId, Box<[String]>>,
}

impl Words {
    /// Whether job `id` is indexed.
    pub fn holds(&self, id: JobId) -> bool {
        self.words_of.contains_key(&id)
    }

    /// Indexes job `id` by `words`.
    pub fn add(&mut self, id: JobId, words: Vec<String>) {
        for word in &words {
            self.jobs_of.entry(word.clone()).or_default().insert(id);
        }
        self.words_of.insert(id, words.into());
    }

    /// Takes job `id` out of the index.
    pub fn forget(&mut self, id: JobId) {
        for word in self.words_of.remove(&id).unwrap_or_default() {
            if let Some(jobs) = self.jobs_of.get_mut(&word) {
                jobs.remove(&id);
                if jobs.is_empty() {
                    self.jobs_of.remove(&word);
                }
            }
        }
    }

    /// The jobs `search` finds, with the same rules as Redis's `search.lua`: every whole word,
    /// and one of the first [`MAX_PREFIX_WORDS`] words starting with the prefix.
    pub fn found(&self, search: &Search) -> HashSet<JobId> {
        let mut sets: Vec<HashSet<JobId>> = search
            .words
            .iter()
            .map(|word| self.jobs_of.get(word).cloned().unwrap_or_default())
            .collect();
        if let Some(prefix) = &search.prefix {
            let with_prefix = self
                .jobs_of
                .range(prefix.clone()..)
                .take_while(|(word, _)| word.starts_with(prefix.as_str()))
                .take(MAX_PREFIX_WORDS)
                .flat_map(|(_, jobs)| jobs.iter().copied())
                .collect();
            sets.push(with_prefix);
        }
        sets.sort_by_key(HashSet::len);
        let mut sets = sets.into_iter();
        let first = sets.next().unwrap_or_default();
        sets.fold(first, |found, set| &found & &set)
    }
}
