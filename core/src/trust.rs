//! Trust on first use, made visible, and naming peers.
//!
//! A peer *is* its identity key. The first time natter meets a key it records
//! it as `unverified`. After the users compare fingerprints (or the safety
//! number) out of band, `/trust` marks it `verified`. A nickname is only a
//! label: a new key arriving under the nickname of a verified contact is a
//! different peer, shown as `key_changed`, and sending to it by nickname is
//! refused until the user decides (verify and trust it, or use its
//! fingerprint explicitly).

use crate::chat::store::{PeerRecord, TrustLevel};
use crate::identity::{Fingerprint, IdentityKey, FINGERPRINT_CHARS};
use crate::names::{clamp_nick, skeleton};
use std::collections::{BTreeSet, HashMap};

/// How far the local user trusts a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrustState {
    /// The user compared fingerprints and said `/trust`.
    Verified,
    /// Seen, never verified (trust on first use).
    Unverified,
    /// Unverified, and its nickname looks like a verified contact's: most
    /// likely someone else using that name, or the contact's new key.
    KeyChanged,
    /// Ourselves.
    Local,
}

/// Every identity the node knows a name for, with its trust level, indexed
/// by look-alike skeleton: what trust states, look-alike warnings and name
/// resolution are computed from, without a store query and without a scan
/// of every known peer.
///
/// It is loaded once from the trust store ([`Directory::load`]) and kept in
/// step by the node: every nickname learnt from a beacon, hello or `Nick`
/// frame ([`Directory::learn`]), every trust change
/// ([`Directory::set_level`]), every peer forgotten ([`Directory::forget`]).
/// Each look-up costs one hash of the skeleton and the identities sharing
/// it, so 100,000 stored strangers do not slow a message down.
#[derive(Debug, Default, Clone)]
pub struct Directory {
    entries: HashMap<IdentityKey, Entry>,
    by_skeleton: HashMap<String, BTreeSet<IdentityKey>>,
    /// Nickname, ASCII case folded (as `/msg` matches it) → identities.
    by_nick: HashMap<String, BTreeSet<IdentityKey>>,
    /// Our own identity, nickname and its skeleton: never a candidate for
    /// a typed name, but our own lines are checked for look-alikes too.
    local: Option<(IdentityKey, String, String)>,
}

#[derive(Debug, Clone)]
struct Entry {
    nickname: String,
    skeleton: String,
    level: TrustLevel,
    /// In the trust store: kept when the peer table forgets it.
    stored: bool,
}

impl Directory {
    /// A directory of the trust store's peers.
    pub fn load(records: impl IntoIterator<Item = PeerRecord>) -> Directory {
        let mut d = Directory::default();
        for r in records {
            let id = IdentityKey(r.identity);
            d.learn(id, &r.nickname);
            d.set_level(id, r.trust);
            d.mark_stored(id);
        }
        d
    }

    /// The latest nickname of `id` (untrusted; as announced).
    pub fn learn(&mut self, id: IdentityKey, nickname: &str) {
        let (level, stored) = match self.entries.get(&id) {
            Some(e) if e.nickname == nickname => return,
            Some(e) => (e.level, e.stored),
            None => (TrustLevel::Unverified, false),
        };
        self.remove(id);
        let skeleton = skeleton(nickname);
        self.by_skeleton
            .entry(skeleton.clone())
            .or_default()
            .insert(id);
        self.by_nick
            .entry(nickname.to_ascii_lowercase())
            .or_default()
            .insert(id);
        let entry = Entry {
            nickname: nickname.to_owned(),
            skeleton,
            level,
            stored,
        };
        self.entries.insert(id, entry);
    }

    /// The user's trust decision about a known identity.
    pub fn set_level(&mut self, id: IdentityKey, level: TrustLevel) {
        if let Some(e) = self.entries.get_mut(&id) {
            e.level = level;
        }
    }

    /// The identity is in the trust store now.
    pub fn mark_stored(&mut self, id: IdentityKey) {
        if let Some(e) = self.entries.get_mut(&id) {
            e.stored = true;
        }
    }

    /// Drops an identity the peer table forgot, unless the trust store
    /// keeps it.
    pub fn forget(&mut self, id: IdentityKey) {
        if self.entries.get(&id).is_some_and(|e| !e.stored) {
            self.remove(id);
        }
    }

    /// Drops an identity the trust store forgot too.
    pub fn remove(&mut self, id: IdentityKey) {
        if let Some(old) = self.entries.remove(&id) {
            if let Some(set) = self.by_skeleton.get_mut(&old.skeleton) {
                set.remove(&id);
                if set.is_empty() {
                    self.by_skeleton.remove(&old.skeleton);
                }
            }
            let nick = old.nickname.to_ascii_lowercase();
            if let Some(set) = self.by_nick.get_mut(&nick) {
                set.remove(&id);
                if set.is_empty() {
                    self.by_nick.remove(&nick);
                }
            }
        }
    }

    pub fn nickname(&self, id: &IdentityKey) -> Option<&str> {
        self.entries.get(id).map(|e| e.nickname.as_str())
    }

    pub fn level(&self, id: &IdentityKey) -> Option<TrustLevel> {
        self.entries.get(id).map(|e| e.level)
    }

    /// Number of identities known.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Our own identity and nickname (at start and after `/nick`).
    pub fn set_local(&mut self, id: IdentityKey, nickname: &str) {
        self.local = Some((id, nickname.to_owned(), skeleton(nickname)));
    }

    /// Other identities whose nickname looks like `nickname`. The skeleton
    /// of a known identity's current nickname is not computed again.
    fn alike(&self, id: &IdentityKey, nickname: &str) -> impl Iterator<Item = &IdentityKey> {
        let known = match (self.entries.get(id), &self.local) {
            (Some(e), _) if e.nickname == nickname => Some(e.skeleton.as_str()),
            (_, Some((l, n, s))) if l == id && n == nickname => Some(s.as_str()),
            _ => None,
        };
        let skeleton: std::borrow::Cow<'_, str> = match known {
            Some(s) => s.into(),
            None => skeleton(nickname).into(),
        };
        let id = *id;
        self.by_skeleton
            .get(skeleton.as_ref())
            .into_iter()
            .flatten()
            .filter(move |other| **other != id)
    }

    /// Verified contacts whose nickname looks like `nickname`, other than `id`.
    pub fn verified_lookalikes(&self, id: &IdentityKey, nickname: &str) -> Vec<IdentityKey> {
        self.alike(id, nickname)
            .filter(|o| self.level(o) == Some(TrustLevel::Verified))
            .copied()
            .collect()
    }

    /// Whether another known identity's nickname looks like `nickname`:
    /// then the UI shows fingerprints beside it.
    pub fn has_lookalike(&self, id: &IdentityKey, nickname: &str) -> bool {
        self.alike(id, nickname).next().is_some()
    }

    /// The trust state of `id` under its current `nickname`.
    pub fn trust_state(&self, local: &IdentityKey, id: &IdentityKey, nickname: &str) -> TrustState {
        if id == local {
            TrustState::Local
        } else if self.level(id) == Some(TrustLevel::Verified) {
            TrustState::Verified
        } else if self.verified_lookalikes(id, nickname).is_empty() {
            TrustState::Unverified
        } else {
            TrustState::KeyChanged
        }
    }

    /// The peer a typed name means (see [`resolve`]): a nickname is looked
    /// up in the index, and only a name that is no known nickname (a
    /// fingerprint prefix) is compared with every identity.
    pub fn resolve(&self, name: &str) -> Result<IdentityKey, ResolveError> {
        let trimmed = name.trim();
        let nick = trimmed.split_once('#').map_or(trimmed, |(n, _)| n);
        let sharing = self.by_nick.get(&nick.to_ascii_lowercase());
        // The common case, a bare nickname one peer has: what `resolve`
        // answers, without copying the candidates' nicknames first (a
        // burst of `/msg` asks once per message).
        let bare = !nick.is_empty() && nick.len() == trimmed.len();
        let only = sharing
            .filter(|ids| bare && ids.len() == 1)
            .and_then(|ids| ids.first());
        let named = |id: &&IdentityKey| {
            self.entries
                .get(*id)
                .is_some_and(|e| e.nickname.eq_ignore_ascii_case(nick))
        };
        if let Some(id) = only.filter(named) {
            return Ok(*id);
        }
        let pool: Vec<Candidate> = match sharing {
            Some(ids) if !nick.is_empty() => ids
                .iter()
                .filter_map(|id| {
                    self.entries.get(id).map(|e| Candidate {
                        identity: *id,
                        nickname: e.nickname.clone(),
                    })
                })
                .collect(),
            _ => self.candidates(),
        };
        resolve(&pool, name)
    }

    /// Everyone a typed name could refer to.
    pub fn candidates(&self) -> Vec<Candidate> {
        self.entries
            .iter()
            .map(|(id, e)| Candidate {
                identity: *id,
                nickname: e.nickname.clone(),
            })
            .collect()
    }
}

/// A peer that a name could refer to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub identity: IdentityKey,
    pub nickname: String,
}

/// Why a name did not pick exactly one peer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResolveError {
    #[error("no peer called \"{name}\"{}", known_list(.known))]
    Unknown { name: String, known: Vec<String> },
    #[error("\"{name}\" could be any of: {}; add more of the fingerprint, e.g. {}", .candidates.join(", "), .candidates.first().map(String::as_str).unwrap_or(""))]
    Ambiguous {
        name: String,
        candidates: Vec<String>,
    },
}

/// Most peers an error lists by name.
const MAX_LISTED: usize = 20;

/// The first [`MAX_LISTED`] candidates by name, sorted, and how many more.
fn listed(candidates: &[Candidate]) -> Vec<String> {
    let mut names: Vec<String> = candidates.iter().map(display_name).collect();
    names.sort();
    let more = names.len().saturating_sub(MAX_LISTED);
    names.truncate(MAX_LISTED);
    if more > 0 {
        names.push(format!("and {more} more"));
    }
    names
}

fn known_list(names: &[String]) -> String {
    if names.is_empty() {
        "; no peers are known yet".into()
    } else {
        format!("; known peers: {}", names.join(", "))
    }
}

/// `nick#ABCD-EFGH`: how a peer is written when names need telling apart.
pub fn display_name(c: &Candidate) -> String {
    format!(
        "{}#{}",
        clamp_nick(&c.nickname),
        Fingerprint::of(&c.identity).short()
    )
}

/// Pick the peer a user means by `name`: a nickname (case-insensitive,
/// when unambiguous), `nick#fingerprint-prefix`, or a fingerprint prefix of
/// at least four characters.
pub fn resolve(candidates: &[Candidate], name: &str) -> Result<IdentityKey, ResolveError> {
    let name = name.trim();
    let (nick_part, fp_part) = match name.split_once('#') {
        Some((n, f)) => (Some(n), Some(f)),
        None => (Some(name), None),
    };
    let by_nick: Vec<&Candidate> = match nick_part {
        Some(n) if !n.is_empty() => candidates
            .iter()
            .filter(|c| c.nickname.eq_ignore_ascii_case(n))
            .collect(),
        _ => candidates.iter().collect(),
    };
    let pick = |set: Vec<&Candidate>| -> Result<IdentityKey, ResolveError> {
        match set.as_slice() {
            [one] => Ok(one.identity),
            [] => Err(ResolveError::Unknown {
                name: name.into(),
                known: listed(candidates),
            }),
            many => {
                // Sorted, so the list reads the same whatever order the
                // candidates came in.
                let mut candidates: Vec<String> = many.iter().map(|c| display_name(c)).collect();
                candidates.sort();
                Err(ResolveError::Ambiguous {
                    name: name.into(),
                    candidates,
                })
            }
        }
    };
    if let Some(fp) = fp_part {
        let set = by_nick
            .into_iter()
            .filter(|c| Fingerprint::of(&c.identity).matches_prefix(fp))
            .collect();
        return pick(set);
    }
    if !by_nick.is_empty() {
        return pick(by_nick);
    }
    let normalized = Fingerprint::normalize_input(name);
    if normalized.len() >= 4 {
        let set = candidates
            .iter()
            .filter(|c| Fingerprint::of(&c.identity).matches_prefix(name))
            .collect();
        return pick(set);
    }
    pick(Vec::new())
}

/// Why a fingerprint typed for `/trust` was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FingerprintError {
    #[error(
        "type the whole fingerprint ({FINGERPRINT_CHARS} characters, dashes optional), not a prefix: \
         a prefix does not prove it is the same key"
    )]
    Prefix,
    #[error(
        "that fingerprint does NOT match this peer's key. Do not trust it: compare again over a \
         channel you trust"
    )]
    Mismatch,
}

/// Check a fingerprint the user typed for `/trust` against the peer's.
pub fn check_typed_fingerprint(typed: &str, actual: &Fingerprint) -> Result<(), FingerprintError> {
    let t = Fingerprint::normalize_input(typed);
    if t.len() < FINGERPRINT_CHARS {
        return Err(FingerprintError::Prefix);
    }
    if t != actual.as_str() {
        return Err(FingerprintError::Mismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::LocalIdentity;

    fn key(n: u8) -> IdentityKey {
        LocalIdentity::from_secrets([n; 32], [n; 32])
            .unwrap()
            .identity_key()
    }

    fn cand(n: u8, nick: &str) -> Candidate {
        Candidate {
            identity: key(n),
            nickname: nick.into(),
        }
    }

    #[test]
    fn resolves_by_nickname_fingerprint_and_both() {
        let cs = vec![cand(1, "alice"), cand(2, "bob"), cand(3, "Bob")];
        assert_eq!(resolve(&cs, "ALICE"), Ok(key(1)));
        let fp2 = key(2).fingerprint();
        assert_eq!(resolve(&cs, &fp2.short()), Ok(key(2)));
        assert_eq!(
            resolve(&cs, &format!("bob#{}", &fp2.as_str()[..4])),
            Ok(key(2))
        );
        match resolve(&cs, "bob") {
            Err(ResolveError::Ambiguous { candidates, .. }) => assert_eq!(candidates.len(), 2),
            other => panic!("{other:?}"),
        }
        match resolve(&cs, "carol") {
            Err(ResolveError::Unknown { known, .. }) => assert_eq!(known.len(), 3),
            other => panic!("{other:?}"),
        }
        // Too short a fingerprint prefix names nobody.
        assert!(resolve(&cs, &fp2.as_str()[..3]).is_err());
    }

    /// The directory's look-up through its nickname index answers every
    /// typed name as [`resolve`] does over every identity it knows:
    /// nicknames in any case, shared, renamed and forgotten, fingerprints
    /// alone and after a nickname, names nobody has.
    #[test]
    fn the_directory_resolves_as_resolve_does_over_everyone() {
        let mut d = Directory::default();
        for (n, nick) in [
            (1, "alice"),
            (2, "bob"),
            (3, "Bob"),
            (4, "carol"),
            (5, "dave"),
            (6, "Ünïcode"),
        ] {
            d.learn(key(n), nick);
        }
        d.learn(key(4), "erin");
        d.learn(key(7), "gone");
        d.forget(key(7));
        let mut names: Vec<String> = [
            "alice",
            "ALICE",
            " alice ",
            "bob",
            "BOB",
            "carol",
            "erin",
            "Erin",
            "dave",
            "Ünïcode",
            "ünïcode",
            "gone",
            "nobody",
            "",
            "#",
            "alice#",
            "a",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for n in [1, 2, 3, 5, 7] {
            let fp = key(n).fingerprint();
            names.push(fp.short());
            names.push(fp.as_str()[..3].to_string());
            names.push(format!("bob#{}", &fp.as_str()[..4]));
            names.push(format!("alice#{}", &fp.as_str()[..6]));
            names.push(format!("#{}", &fp.as_str()[..5]));
        }
        // The peer picked, or the candidates of an ambiguous name; an
        // unknown name's error lists the peers it was compared with,
        // which the index narrows on purpose.
        let outcome = |r: Result<IdentityKey, ResolveError>| match r {
            Ok(id) => Ok(id),
            Err(ResolveError::Unknown { .. }) => Err(None),
            Err(ResolveError::Ambiguous { candidates, .. }) => Err(Some(candidates)),
        };
        let everyone = d.candidates();
        for name in &names {
            assert_eq!(
                outcome(d.resolve(name)),
                outcome(resolve(&everyone, name)),
                "{name:?}"
            );
        }
    }

    #[test]
    fn typed_fingerprints_must_be_whole_and_equal() {
        let fp = key(1).fingerprint();
        assert!(check_typed_fingerprint(&fp.grouped().to_lowercase(), &fp).is_ok());
        let prefix = check_typed_fingerprint(&fp.short(), &fp).unwrap_err();
        assert!(prefix.to_string().contains("whole"));
        let other = key(2).fingerprint();
        let wrong = check_typed_fingerprint(other.as_str(), &fp).unwrap_err();
        assert!(wrong.to_string().contains("NOT"));
    }

    #[test]
    fn a_new_key_under_a_verified_nickname_is_flagged() {
        let mut d = Directory::default();
        let (alice, mallory, me) = (key(1), key(2), key(9));
        d.learn(alice, "alice");
        d.learn(mallory, "аlice");
        assert_eq!(
            d.trust_state(&me, &mallory, "аlice"),
            TrustState::Unverified
        );
        d.set_level(alice, TrustLevel::Verified);
        assert_eq!(d.trust_state(&me, &alice, "alice"), TrustState::Verified);
        // Cyrillic а: looks like alice, different key.
        assert_eq!(
            d.trust_state(&me, &mallory, "аlice"),
            TrustState::KeyChanged
        );
        assert_eq!(d.verified_lookalikes(&mallory, "аlice"), [alice]);
        assert!(d.has_lookalike(&alice, "alice"));
        assert_eq!(d.trust_state(&me, &me, "me"), TrustState::Local);
        // A rename moves the identity to its new skeleton.
        d.learn(mallory, "mallory");
        assert_eq!(
            d.trust_state(&me, &mallory, "mallory"),
            TrustState::Unverified
        );
        assert!(!d.has_lookalike(&alice, "alice"));
        d.forget(mallory);
        assert_eq!(d.len(), 1);
        assert_eq!(d.nickname(&alice), Some("alice"));
    }

    /// Loading from the trust store keeps nicknames and levels.
    #[test]
    fn a_directory_loads_the_trust_store() {
        use crate::chat::store::ChatStore;
        let mut store = crate::chat::MemoryStore::new();
        store
            .upsert_peer_seen(&key(1).0, &[5; 32], "alice", 1, None)
            .unwrap();
        store.set_trust(&key(1).0, TrustLevel::Verified, 2).unwrap();
        let d = Directory::load(store.peers().unwrap());
        assert_eq!(d.level(&key(1)), Some(TrustLevel::Verified));
        assert_eq!(d.nickname(&key(1)), Some("alice"));
    }

    /// The look-alikes an attacker review found passing as strangers, and
    /// one of each class the skeleton covers: all must be KEY CHANGED next
    /// to a verified "alice".
    #[test]
    fn every_class_of_look_alike_of_a_verified_name_is_flagged() {
        let mut d = Directory::default();
        let (alice, me) = (key(1), key(9));
        d.learn(alice, "alice");
        d.set_level(alice, TrustLevel::Verified);
        for (n, fake) in [
            "alice\u{fe0f}",  // variation selector
            "alice\u{2800}",  // blank braille pattern
            "alice\u{0483}",  // Cyrillic combining mark
            "al\u{200b}ice",  // zero-width space
            "\u{0430}lice",   // Cyrillic а
            "ａｌｉｃｅ",     // full-width
            "𝐚𝐥𝐢𝐜𝐞",          // mathematical bold
            "Alice",          // case
            "aIice",          // capital I for l
            "ali\u{0301}ce",  // Latin combining acute
            "alice\u{3164}",  // Hangul filler
            "al\u{e0041}ice", // tag character
        ]
        .iter()
        .zip(20u8..)
        .map(|(f, n)| (n, *f))
        {
            let id = key(n);
            d.learn(id, fake);
            assert_eq!(
                d.trust_state(&me, &id, fake),
                TrustState::KeyChanged,
                "{fake:?} passed as a stranger"
            );
        }
        let bob = key(40);
        d.learn(bob, "alicf");
        assert_eq!(d.trust_state(&me, &bob, "alicf"), TrustState::Unverified);
    }

    /// Resolving through the directory gives what resolving over every
    /// candidate gives, and an error lists at most 20 names.
    #[test]
    fn directory_resolution_matches_the_candidate_scan() {
        let mut d = Directory::default();
        for (n, nick) in [(1, "alice"), (2, "bob"), (3, "Bob"), (4, "b0b")] {
            d.learn(key(n), nick);
        }
        for n in 10..60u8 {
            d.learn(key(n), &format!("x{n}"));
        }
        let all = d.candidates();
        let fp2 = key(2).fingerprint();
        for name in [
            "ALICE".to_string(),
            "bob".into(),
            format!("bob#{}", &fp2.as_str()[..4]),
            fp2.short(),
            "carol".into(),
            "#".into(),
        ] {
            assert_eq!(d.resolve(&name), resolve(&all, &name), "{name}");
        }
        match d.resolve("carol") {
            Err(ResolveError::Unknown { known, .. }) => {
                assert_eq!(known.len(), MAX_LISTED + 1);
                assert!(known[MAX_LISTED].starts_with("and "));
            }
            other => panic!("{other:?}"),
        }
    }
}
