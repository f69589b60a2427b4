//! The memory store's queue order: highest priority first, first come first served within one,
//! the same order as the Redis queue's scores.

use crate::job::{JobId, Priority};
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};

/// Where a queued job stands: its priority (higher first), then its arrival number.
type Place = (Reverse<Priority>, u64);

/// The queued jobs, in claim order.
#[derive(Default)]
pub struct Ready {
    order: BTreeMap<Place, JobId>,
    places: HashMap<JobId, Place>,
    arrivals: u64,
}

impl Ready {
    /// Queues `id` behind every job of `priority` already queued; a queued job keeps its place.
    pub fn push(&mut self, id: JobId, priority: Priority) {
        if self.places.contains_key(&id) {
            return;
        }
        self.arrivals += 1;
        let place = (Reverse(priority), self.arrivals);
        self.order.insert(place, id);
        self.places.insert(id, place);
    }

    /// Takes the first job in claim order.
    pub fn pop(&mut self) -> Option<JobId> {
        let (_, id) = self.order.pop_first()?;
        self.places.remove(&id);
        Some(id)
    }

    /// Moves a queued job to `priority`, keeping its arrival; nothing if it is not queued.
    pub fn reprioritise(&mut self, id: JobId, priority: Priority) {
        let Some(place) = self.places.get_mut(&id) else {
            return;
        };
        self.order.remove(place);
        place.0 = Reverse(priority);
        self.order.insert(*place, id);
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// The queued jobs in claim order.
    pub fn iter(&self) -> impl Iterator<Item = &JobId> {
        self.order.values()
    }

    /// Keeps only the jobs `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&JobId) -> bool) {
        let places = &mut self.places;
        self.order.retain(|_, id| {
            let kept = keep(id);
            if !kept {
                places.remove(id);
            }
            kept
        });
    }

    /// Empties the queue: its jobs with their priorities, in claim order.
    pub fn drain(&mut self) -> Vec<(JobId, Priority)> {
        self.places.clear();
        let order = std::mem::take(&mut self.order);
        order
            .into_iter()
            .map(|((Reverse(priority), _), id)| (id, priority))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn priority(value: i64) -> Priority {
        Priority::new(value).unwrap()
    }

    #[test]
    fn jobs_come_out_highest_priority_first_and_in_arrival_order_within_one() {
        let mut ready = Ready::default();
        let ids: Vec<JobId> = (0..4).map(|_| JobId::new()).collect();
        ready.push(ids[0], priority(1));
        ready.push(ids[1], priority(5));
        ready.push(ids[2], priority(1));
        ready.push(ids[3], priority(5));
        let order: Vec<JobId> = std::iter::from_fn(|| ready.pop()).collect();
        assert_eq!(order, [ids[1], ids[3], ids[0], ids[2]]);
    }

    #[test]
    fn a_reprioritised_job_keeps_its_arrival_in_its_new_priority() {
        let mut ready = Ready::default();
        let ids: Vec<JobId> = (0..3).map(|_| JobId::new()).collect();
        ready.push(ids[0], priority(0));
        ready.push(ids[1], priority(3));
        ready.push(ids[2], priority(3));
        ready.reprioritise(ids[0], priority(3));
        ready.push(ids[0], priority(9)); // already queued: keeps its place
        assert_eq!(ready.len(), 3);
        let order: Vec<JobId> = std::iter::from_fn(|| ready.pop()).collect();
        assert_eq!(order, [ids[0], ids[1], ids[2]]);
    }
}
