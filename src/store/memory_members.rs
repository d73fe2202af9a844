//! The in-memory store's members, kept as they are (decoded), by id.
//!
//! A step looks its member up twice (checked out, then put back), so by hash; the
//! order sled's keys would have (the UTF-8 bytes of the ids) lives in a set of ids
//! beside it, which changes only when a member is added or removed.
//!
//! The members themselves sit in [`Places`] that never move: the hash table holds a
//! member's place, not the member. A table that held the members (about 250 bytes
//! each) copied all of them into fresh memory at every doubling as a community grew;
//! on peer50 (9,497 members) those copies were a third of the pages `rally sim`
//! touched, and on this machine a fresh page costs more than the copy (the kernel
//! zeroes it: a fifth of that run's time).

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;

use super::memory::Hashing;
use super::Prefetch;
use crate::member::Member;

/// Members by id, in sled's order on request. A member checked out for a step keeps
/// its place (empty) until the commit puts the new state back.
#[derive(Default)]
pub(super) struct Members {
    /// Each member's place in `places`.
    by_id: HashMap<Id, usize, Hashing>,
    /// The members; an empty place of an id in `by_id` is checked out, and reads as
    /// not stored.
    places: Places,
    /// Every id of `by_id`, in order.
    order: BTreeSet<Box<str>>,
    /// How many members are checked out.
    out: usize,
}

/// A member's id as a key: inline when it fits in 23 bytes, so a lookup compares it
/// in the bucket it has already loaded instead of reaching for a string elsewhere on
/// the heap (two lookups a step).
type Id = crate::member::Name;

impl Members {
    pub(super) fn get(&self, id: &str) -> Option<&Member> {
        self.places.get(*self.by_id.get(id)?)
    }

    /// Stores `member`, in its place when it has one (as it mostly does).
    pub(super) fn put(&mut self, member: Member) {
        match self.by_id.get(member.id.as_str()) {
            Some(&place) => {
                let slot = self.places.slot_mut(place);
                if slot.is_none() {
                    self.out -= 1;
                }
                *slot = Some(member);
            }
            None => {
                let id = Id::from(member.id.as_str());
                self.order.insert(member.id.as_str().into());
                let place = self.places.add(member);
                self.by_id.insert(id, place);
            }
        }
    }

    pub(super) fn remove(&mut self, id: &str) {
        if let Some(place) = self.by_id.remove(id) {
            self.order.remove(id);
            if self.places.vacate(place).is_none() {
                self.out -= 1;
            }
        }
    }

    pub(super) fn check_out(&mut self, id: &str) -> Option<Member> {
        let place = *self.by_id.get(id)?;
        let member = self.places.slot_mut(place).take()?;
        self.out += 1;
        Some(member)
    }

    /// Starts fetching what a step of member `id` will read (see
    /// [`crate::prefetch`]), to the depth asked.
    pub(super) fn prefetch(&self, id: &str, depth: Prefetch) {
        let Some(&place) = self.by_id.get(id) else {
            return;
        };
        match depth {
            Prefetch::Place => crate::prefetch::value(self.places.slot(place)),
            Prefetch::Member => {
                if let Some(member) = self.places.get(place) {
                    member.prefetch();
                }
            }
            Prefetch::Book => {
                if let Some(member) = self.places.get(place) {
                    member.prefetch_book();
                }
            }
        }
    }

    pub(super) fn len(&self) -> usize {
        self.by_id.len() - self.out
    }

    /// The members stored between two bounds, in id order from either end.
    pub(super) fn range<'a>(
        &'a self,
        bounds: (Bound<&str>, Bound<&str>),
    ) -> impl DoubleEndedIterator<Item = (&'a str, &'a Member)> + 'a {
        self.order
            .range::<str, _>(bounds)
            .filter_map(|id| Some((&**id, self.get(id)?)))
    }

    /// The ids of the members stored between two bounds, in order, without reading
    /// the members.
    pub(super) fn ids<'a>(
        &'a self,
        bounds: (Bound<&str>, Bound<&str>),
    ) -> impl Iterator<Item = &'a str> + 'a {
        self.order.range::<str, _>(bounds).map(|id| &**id)
    }

    /// Stores every member of `members`, in order, each as [`Members::put`] does; the
    /// places of the next few are fetched ahead (see [`crate::prefetch`]).
    pub(super) fn put_all(&mut self, members: Vec<Member>) {
        const AHEAD: usize = 4;
        let mut members = members.into_iter();
        while let Some(member) = members.next() {
            if let Some(ahead) = members.as_slice().get(AHEAD - 1) {
                self.prefetch(&ahead.id, Prefetch::Place);
            }
            self.put(member);
        }
    }

    /// Every member stored, in id order, taken out: the store is left without members.
    pub(super) fn take_all(&mut self) -> Vec<Member> {
        let mut taken = Vec::with_capacity(self.len());
        let by_id = std::mem::take(&mut self.by_id);
        let mut places = std::mem::take(&mut self.places);
        self.out = 0;
        for id in std::mem::take(&mut self.order) {
            let member = by_id
                .get(&*id)
                .and_then(|&place| places.slot_mut(place).take());
            taken.extend(member);
        }
        taken
    }
}

/// Members per chunk of [`Places`]: a megabyte, allocated whole and written only as
/// members arrive.
const CHUNK: usize = 4096;

/// Numbered places for members, in chunks made with room for [`CHUNK`] members and
/// never grown past it, so a member stays where it was put however many come after.
#[derive(Default)]
struct Places {
    chunks: Vec<Vec<Option<Member>>>,
    /// Places whose member was removed, taken again first.
    vacant: Vec<usize>,
}

impl Places {
    /// Puts `member` in a place of its own and returns it.
    fn add(&mut self, member: Member) -> usize {
        if let Some(place) = self.vacant.pop() {
            *self.slot_mut(place) = Some(member);
            return place;
        }
        if self.chunks.last().is_none_or(|chunk| chunk.len() == CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        let last = self.chunks.len() - 1;
        let chunk = &mut self.chunks[last];
        chunk.push(Some(member));
        last * CHUNK + chunk.len() - 1
    }

    fn get(&self, place: usize) -> Option<&Member> {
        self.chunks.get(place / CHUNK)?.get(place % CHUNK)?.as_ref()
    }

    /// The place's slot (not read: for its address). `place` must have come from
    /// [`Places::add`].
    fn slot(&self, place: usize) -> *const Option<Member> {
        self.chunks[place / CHUNK]
            .as_ptr()
            .wrapping_add(place % CHUNK)
    }

    /// The place's slot, empty while its member is checked out. `place` must have
    /// come from [`Places::add`].
    fn slot_mut(&mut self, place: usize) -> &mut Option<Member> {
        &mut self.chunks[place / CHUNK][place % CHUNK]
    }

    /// Empties `place` for the next member added and returns what it held.
    fn vacate(&mut self, place: usize) -> Option<Member> {
        let member = self.slot_mut(place).take();
        self.vacant.push(place);
        member
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Members `m-1`, `m-2` and `m-3`, new.
    fn three_members() -> Members {
        let mut members = Members::default();
        for id in ["m-1", "m-2", "m-3"] {
            members.put(Member::new(id));
        }
        members
    }

    #[test]
    fn a_checked_out_member_reads_as_not_stored_until_put_back() {
        let mut members = three_members();
        let out = members.check_out("m-2").unwrap();
        assert!(members.get("m-2").is_none());
        assert!(members.check_out("m-2").is_none());
        assert_eq!(members.len(), 2);
        let ids = |members: &Members| -> Vec<String> {
            members
                .range((Bound::Unbounded, Bound::Unbounded))
                .map(|(id, _)| id.to_string())
                .collect()
        };
        assert_eq!(ids(&members), ["m-1", "m-3"]);
        assert_eq!(
            members
                .range((Bound::Excluded("m-1"), Bound::Unbounded))
                .next_back()
                .map(|(id, _)| id),
            Some("m-3")
        );
        members.put(out);
        assert_eq!(members.len(), 3);
        assert_eq!(ids(&members), ["m-1", "m-2", "m-3"]);
        members.check_out("m-3");
        members.remove("m-3");
        assert_eq!(members.len(), 2);
        assert_eq!(ids(&members), ["m-1", "m-2"]);
    }

    #[test]
    fn members_put_together_each_land_in_their_place() {
        let mut members = three_members();
        let mut two = members.check_out("m-2").unwrap();
        two.points = 2;
        // More than the places fetched ahead, old and new, one checked out.
        let mut group = vec![two];
        for id in ["m-4", "m-5", "m-6", "m-7", "m-8", "m-1"] {
            let mut member = Member::new(id);
            member.points = 10;
            group.push(member);
        }
        members.put_all(group);
        assert_eq!(members.len(), 8);
        let points = |id: &str| members.get(id).map(|member| member.points);
        assert_eq!(points("m-2"), Some(2));
        assert_eq!(points("m-1"), Some(10));
        assert_eq!(points("m-3"), Some(0));
        assert_eq!(points("m-8"), Some(10));
        assert_eq!(members.out, 0);
    }

    #[test]
    fn prefetching_a_member_absent_checked_out_or_removed_reads_nothing() {
        let mut members = three_members();
        let out = members.check_out("m-2").unwrap();
        members.remove("m-3");
        for id in ["m-1", "m-2", "m-3", "m-9", ""] {
            for depth in [Prefetch::Place, Prefetch::Member, Prefetch::Book] {
                members.prefetch(id, depth);
            }
        }
        assert!(members.get("m-2").is_none());
        members.put(out);
        assert_eq!(
            members
                .ids((Bound::Unbounded, Bound::Unbounded))
                .collect::<Vec<_>>(),
            ["m-1", "m-2"]
        );
    }

    #[test]
    fn members_are_taken_out_in_id_order_and_the_store_then_holds_none() {
        let mut members = Members::default();
        // Added out of order; "m-10" sorts before "m-9" as sled's bytes do. An id too
        // long to be kept inline (36 bytes) is found and ordered as the short ones.
        let long = "0b8f2c4e-7d1a-4f6b-9c3e-5a2d8e1f0c7b";
        for id in ["m-9", "m-10", long, "m-2", "a", "m-\u{fc}"] {
            members.put(Member::new(id));
        }
        members.check_out("m-2");
        let out = members.check_out(long).map(|m| m.id);
        assert_eq!(out.as_deref(), Some(long));
        assert!(members.get(long).is_none());
        members.put(Member::new(long));
        assert_eq!(members.get(long).map(|m| m.id.as_str()), Some(long));
        let taken: Vec<String> = members
            .take_all()
            .into_iter()
            .map(|m| m.id.to_string())
            .collect();
        assert_eq!(taken, [long, "a", "m-10", "m-9", "m-\u{fc}"]);
        assert_eq!(members.len(), 0);
        assert!(members.get("a").is_none());
        assert_eq!(
            members.range((Bound::Unbounded, Bound::Unbounded)).count(),
            0
        );
        // The checked-out member comes back into an empty store.
        members.put(Member::new("m-2"));
        assert_eq!(members.len(), 1);
    }

    /// Past several chunks, with members removed (their places taken again) and
    /// checked out on the way: every member reads back as put, by id and in order.
    #[test]
    fn members_keep_their_places_across_chunks_and_removals() {
        let mut members = Members::default();
        let id = |n: usize| format!("m-{n:05}");
        let count = 3 * CHUNK + 17;
        for n in 0..count {
            let mut member = Member::new(&id(n));
            member.points = n as i64;
            members.put(member);
        }
        // Every third member removed, then as many new ones added into their places.
        for n in (0..count).step_by(3) {
            members.remove(&id(n));
        }
        let removed = count.div_ceil(3);
        assert_eq!(members.len(), count - removed);
        assert_eq!(members.places.vacant.len(), removed);
        for n in count..count + removed {
            let mut member = Member::new(&id(n));
            member.points = n as i64;
            members.put(member);
        }
        assert!(members.places.vacant.is_empty());
        assert_eq!(
            members.places.chunks.len(),
            4,
            "no chunk added for reused places"
        );
        let out = members.check_out(&id(CHUNK + 1));
        assert!(members.get(&id(CHUNK + 1)).is_none());
        members.put(out.unwrap());
        let kept: Vec<usize> = (0..count + removed)
            .filter(|n| n >= &count || n % 3 != 0)
            .collect();
        for &n in &kept {
            let member = members.get(&id(n)).unwrap();
            assert_eq!(
                (member.id.as_str(), member.points),
                (id(n).as_str(), n as i64)
            );
        }
        assert!(members.get(&id(3)).is_none());
        let taken: Vec<(String, i64)> = members
            .take_all()
            .into_iter()
            .map(|m| (m.id.to_string(), m.points))
            .collect();
        let expected: Vec<(String, i64)> = kept.iter().map(|&n| (id(n), n as i64)).collect();
        assert_eq!(taken, expected);
    }
}
