//! The SQLite store as the chat core's [`ChatStore`]: each method is the
//! inherent method of the same name; errors keep their SQLite source.

use super::{ConversationKey, DbError, IdentityBytes, MessageId, PeerRecord, Store, StoredMessage};
use natter_core::chat::store::{ChatStore, NoiseStaticKey, StoreError, TrustLevel};

impl From<DbError> for StoreError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::EmptyQuery => StoreError::EmptyQuery,
            DbError::UnknownMessage { id } => StoreError::UnknownMessage { id },
            DbError::UnknownPeer { identity } => StoreError::UnknownPeer { identity },
            DbError::OutOfRange { field, value } => StoreError::OutOfRange { field, value },
            other => StoreError::Backend(Box::new(other)),
        }
    }
}

impl ChatStore for Store {
    fn insert_messages(&mut self, msgs: &[StoredMessage]) -> Result<Vec<bool>, StoreError> {
        Ok(Store::insert_messages(self, msgs)?)
    }
    fn has_message(&self, author: &IdentityBytes, id: &MessageId) -> Result<bool, StoreError> {
        Ok(Store::has_message(self, author, id)?)
    }
    fn get_message(
        &self,
        author: &IdentityBytes,
        id: &MessageId,
    ) -> Result<Option<StoredMessage>, StoreError> {
        Ok(Store::get_message(self, author, id)?)
    }
    fn get_messages(
        &self,
        keys: &[(IdentityBytes, MessageId)],
    ) -> Result<Vec<Option<StoredMessage>>, StoreError> {
        Ok(Store::get_messages(self, keys)?)
    }
    fn message_count(&self) -> Result<u64, StoreError> {
        Ok(Store::message_count(self)?)
    }
    fn history(
        &self,
        conv: &ConversationKey,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        Ok(Store::history(self, conv, limit)?)
    }
    fn search(
        &self,
        words: &str,
        room: Option<&[u8; 32]>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        Ok(Store::search(self, words, room, limit)?)
    }
    fn room_controls(&self) -> Result<Vec<StoredMessage>, StoreError> {
        Ok(Store::room_controls(self)?)
    }
    fn outgoing_by_id_tag(
        &self,
        tag: &[u8],
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        Ok(Store::outgoing_by_id_tag(self, tag, limit)?)
    }
    fn public_since(
        &self,
        since_ms: u64,
        until_ms: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        Ok(Store::public_since(self, since_ms, until_ms, limit)?)
    }
    fn newest_public_timestamp(&self, at_most_ms: u64) -> Result<Option<u64>, StoreError> {
        Ok(Store::newest_public_timestamp(self, at_most_ms)?)
    }
    fn insert_outgoing_batch(
        &mut self,
        items: &[(&StoredMessage, &[IdentityBytes])],
    ) -> Result<Vec<bool>, StoreError> {
        Ok(Store::insert_outgoing_batch(self, items)?)
    }
    fn outbox_add(&mut self, entries: &[(MessageId, IdentityBytes)]) -> Result<usize, StoreError> {
        Ok(Store::outbox_add(self, entries)?)
    }
    fn outbox_for_peer(
        &self,
        peer: &IdentityBytes,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        Ok(Store::outbox_for_peer(self, peer, limit)?)
    }
    fn outbox_ack(
        &mut self,
        peer: &IdentityBytes,
        ids: &[MessageId],
        now_ms: u64,
    ) -> Result<Vec<MessageId>, StoreError> {
        Ok(Store::outbox_ack(self, peer, ids, now_ms)?)
    }
    fn outbox_recipients(
        &self,
        seen_since_ms: u64,
        limit: usize,
    ) -> Result<Vec<IdentityBytes>, StoreError> {
        Ok(Store::outbox_recipients(self, seen_since_ms, limit)?)
    }
    fn expire_outbox(&mut self, unseen_since_ms: u64) -> Result<usize, StoreError> {
        Ok(Store::expire_outbox(self, unseen_since_ms)?)
    }
    fn prune_peers(
        &mut self,
        unseen_since_ms: u64,
        keep_unverified: usize,
    ) -> Result<Vec<IdentityBytes>, StoreError> {
        Ok(Store::prune_peers(self, unseen_since_ms, keep_unverified)?)
    }
    fn pending_peers(&self, id: &MessageId) -> Result<Vec<IdentityBytes>, StoreError> {
        Ok(Store::pending_peers(self, id)?)
    }
    fn outbox_peers(&self) -> Result<Vec<IdentityBytes>, StoreError> {
        Ok(Store::outbox_peers(self)?)
    }
    fn delivered_to(&self, id: &MessageId) -> Result<Vec<IdentityBytes>, StoreError> {
        Ok(Store::delivered_to(self, id)?)
    }
    fn upsert_peer_seen(
        &mut self,
        identity: &IdentityBytes,
        noise_static: &NoiseStaticKey,
        nickname: &str,
        now_ms: u64,
        addr: Option<&str>,
    ) -> Result<bool, StoreError> {
        Ok(Store::upsert_peer_seen(
            self,
            identity,
            noise_static,
            nickname,
            now_ms,
            addr,
        )?)
    }
    fn get_peer(&self, identity: &IdentityBytes) -> Result<Option<PeerRecord>, StoreError> {
        Ok(Store::get_peer(self, identity)?)
    }
    fn peers(&self) -> Result<Vec<PeerRecord>, StoreError> {
        Ok(Store::peers(self)?)
    }
    fn set_trust(
        &mut self,
        identity: &IdentityBytes,
        trust: TrustLevel,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        Ok(Store::set_trust(self, identity, trust, now_ms)?)
    }
    fn known_addrs(&self) -> Result<Vec<(IdentityBytes, String)>, StoreError> {
        Ok(Store::known_addrs(self)?)
    }
    fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(Store::get_meta(self, key)?)
    }
    fn set_meta(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        Ok(Store::set_meta(self, key, value)?)
    }
}
