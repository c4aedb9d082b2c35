//! [`Api<K>`]: the REST verbs on one kind, in one namespace or across all,
//! for any k8s-openapi type.

use std::any::TypeId;
use std::fmt::Debug;
use std::marker::PhantomData;

use bytes::Bytes;
use http::Method;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ListMeta, ObjectMeta, Status};
use k8s_openapi::{Metadata, NamespaceResourceScope, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::client::{Client, decode};
use crate::error::{Error, Result};
use crate::params::{DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchParams, encode_into};
use crate::watch::WatchStream;

/// What a type needs to be used with [`Api`]: every k8s-openapi resource
/// type with `ObjectMeta` qualifies.
pub trait Object:
    Resource + Metadata<Ty = ObjectMeta> + Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
}

impl<T> Object for T where
    T: Resource + Metadata<Ty = ObjectMeta> + Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
}

/// Whether `K` lives in namespaces (as opposed to cluster-scoped).
pub(crate) fn is_namespaced<K: Resource>() -> bool
where
    K::Scope: 'static,
{
    TypeId::of::<K::Scope>() == TypeId::of::<NamespaceResourceScope>()
}

/// One page of a list, or a whole list from [`Api::list_all`].
#[derive(Clone, Debug, Default)]
pub struct ObjectList<K> {
    pub metadata: ListMeta,
    pub items: Vec<K>,
}

impl<K> ObjectList<K> {
    /// The resourceVersion to watch from to follow this list.
    pub fn resource_version(&self) -> &str {
        self.metadata.resource_version.as_deref().unwrap_or("")
    }

    /// The token for the next page, if there is one.
    pub fn continue_token(&self) -> Option<&str> {
        self.metadata.continue_.as_deref().filter(|c| !c.is_empty())
    }
}

/// What a delete did.
#[derive(Clone, Debug)]
pub enum Deleted<K> {
    /// The object is gone; this was its last state.
    Finished(K),
    /// Deletion has begun but the object remains until its finalizers or
    /// grace period are done (HTTP 202).
    InProgress(K),
    /// The server answered with a `Status` rather than the object.
    Status(Box<Status>),
}

/// The verbs on objects of kind `K`, in one namespace or, from
/// [`Api::all`], across all namespaces (or cluster-scoped).
pub struct Api<K> {
    client: Client,
    namespace: Option<String>,
    _kind: PhantomData<fn() -> K>,
}

impl<K> Clone for Api<K> {
    fn clone(&self) -> Self {
        Api { client: self.client.clone(), namespace: self.namespace.clone(), _kind: PhantomData }
    }
}

impl<K> Debug for Api<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").field("namespace", &self.namespace).finish_non_exhaustive()
    }
}

impl<K: Object> Api<K> {
    /// Objects of a namespaced kind in namespace `ns`.
    pub fn namespaced(client: Client, ns: &str) -> Self
    where
        K: Resource<Scope = NamespaceResourceScope>,
    {
        Api { client, namespace: Some(ns.to_string()), _kind: PhantomData }
    }

    /// Objects in the namespace of the client's configuration.
    pub fn default_namespaced(client: Client) -> Self
    where
        K: Resource<Scope = NamespaceResourceScope>,
    {
        let ns = client.default_namespace().to_string();
        Api { client, namespace: Some(ns), _kind: PhantomData }
    }

    /// Cluster-scoped objects, or a namespaced kind across all namespaces
    /// (list and watch only; single-object calls need [`Api::namespaced`]).
    pub fn all(client: Client) -> Self {
        Api { client, namespace: None, _kind: PhantomData }
    }

    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub async fn get(&self, name: &str) -> Result<K> {
        let path = self.object_path(name, None)?;
        let bytes = self.client.request(Method::GET, path.clone(), None).await?;
        decode(&bytes, &path)
    }

    /// [`Api::get`], with `None` for a 404.
    pub async fn get_opt(&self, name: &str) -> Result<Option<K>> {
        match self.get(name).await {
            Ok(o) => Ok(Some(o)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One page of objects. Items that do not decode as `K` are logged and
    /// skipped.
    pub async fn list(&self, params: &ListParams) -> Result<ObjectList<K>> {
        let path = format!("{}{}", self.collection_path(), params.query().as_str());
        let bytes = self.client.request(Method::GET, path.clone(), None).await?;
        decode_list(&bytes, &path)
    }

    /// Every page of a list (500 items per request unless `params.limit`
    /// says otherwise), with the resourceVersion of the first page: the
    /// one a watch must start from to miss nothing.
    pub async fn list_all(&self, params: &ListParams) -> Result<ObjectList<K>> {
        let mut params =
            ListParams { limit: Some(params.limit.unwrap_or(500)), continue_token: None, ..params.clone() };
        let mut all = self.list(&params).await?;
        let mut next = all.continue_token().map(str::to_string);
        while let Some(token) = next {
            params.continue_token = Some(token);
            let page = self.list(&params).await?;
            next = page.continue_token().map(str::to_string);
            all.items.extend(page.items);
        }
        all.metadata.continue_ = None;
        all.metadata.remaining_item_count = None;
        Ok(all)
    }

    pub async fn create(&self, params: &PostParams, object: &K) -> Result<K> {
        if self.namespace.is_none() && is_namespaced::<K>() {
            return Err(Error::NamespaceRequired { kind: K::KIND });
        }
        let path = format!("{}{}", self.collection_path(), params.query(self.client.field_manager()).as_str());
        self.send_object(Method::POST, path, "application/json", encode(object)?).await
    }

    /// Replaces the object (PUT); `object`'s resourceVersion, if set, must
    /// still be current or the server answers 409 Conflict.
    pub async fn replace(&self, name: &str, params: &PostParams, object: &K) -> Result<K> {
        let path = format!("{}{}", self.object_path(name, None)?, params.query(self.client.field_manager()).as_str());
        self.send_object(Method::PUT, path, "application/json", encode(object)?).await
    }

    /// Replaces the status subresource.
    pub async fn replace_status(&self, name: &str, params: &PostParams, object: &K) -> Result<K> {
        let path = format!(
            "{}{}",
            self.object_path(name, Some("status"))?,
            params.query(self.client.field_manager()).as_str()
        );
        self.send_object(Method::PUT, path, "application/json", encode(object)?).await
    }

    /// POSTs `data` to a subresource of object `name` (a Binding to
    /// `pods/{name}/binding`, ...) and decodes the answer as `T`: often a
    /// `Status` rather than an object.
    pub async fn create_subresource<B: Serialize, T: DeserializeOwned>(
        &self,
        subresource: &str,
        name: &str,
        params: &PostParams,
        data: &B,
    ) -> Result<T> {
        let path = format!(
            "{}{}",
            self.object_path(name, Some(subresource))?,
            params.query(self.client.field_manager()).as_str()
        );
        let body = Bytes::from(encode(data)?);
        let bytes = self.client.request(Method::POST, path.clone(), Some(("application/json", body))).await?;
        decode(&bytes, &path)
    }

    pub async fn patch<P: Serialize>(&self, name: &str, params: &PatchParams, patch: &Patch<P>) -> Result<K> {
        self.patch_at(name, None, params, patch).await
    }

    /// Patches the status subresource.
    pub async fn patch_status<P: Serialize>(&self, name: &str, params: &PatchParams, patch: &Patch<P>) -> Result<K> {
        self.patch_at(name, Some("status"), params, patch).await
    }

    pub async fn delete(&self, name: &str, params: &DeleteParams) -> Result<Deleted<K>> {
        let path = self.object_path(name, None)?;
        let body = Bytes::from(serde_json::to_vec(&params.body()).map_err(Error::Encode)?);
        let (code, bytes) =
            self.client.request_with_code(Method::DELETE, path.clone(), Some(("application/json", body))).await?;
        let value: Value = decode(&bytes, &path)?;
        if value.get("kind").and_then(Value::as_str) == Some("Status") {
            return Ok(Deleted::Status(Box::new(decode(&bytes, &path)?)));
        }
        let object: K = serde_json::from_value(value).map_err(|source| Error::Decode { what: path, source })?;
        Ok(if code == 202 { Deleted::InProgress(object) } else { Deleted::Finished(object) })
    }

    /// Watches for changes after `resource_version` ("" or "0": the current
    /// state as ADDED events first). A 410 comes back as [`Error::Gone`],
    /// here or from the stream.
    pub async fn watch(&self, params: &WatchParams, resource_version: &str) -> Result<WatchStream<K>> {
        let path = format!("{}{}", self.collection_path(), params.query(resource_version).as_str());
        let (body, lease) = self.client.stream(path).await?;
        // A watch the server does not end (no timeoutSeconds) is still
        // bounded: kube-apiserver ends watches after at most an hour.
        let idle = std::time::Duration::from_secs(u64::from(params.timeout_seconds.unwrap_or(3600)) + 60);
        Ok(WatchStream::new(body, lease, self.client.clone(), idle))
    }

    async fn patch_at<P: Serialize>(
        &self,
        name: &str,
        sub: Option<&str>,
        params: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<K> {
        let query = params.query(self.client.field_manager(), patch.is_apply());
        let path = format!("{}{}", self.object_path(name, sub)?, query.as_str());
        self.send_object(Method::PATCH, path, patch.content_type(), patch.body()?).await
    }

    async fn send_object(&self, method: Method, path: String, content_type: &'static str, body: Vec<u8>) -> Result<K> {
        let bytes = self.client.request(method, path.clone(), Some((content_type, Bytes::from(body)))).await?;
        decode(&bytes, &path)
    }

    fn collection_path(&self) -> String {
        let mut path =
            if K::GROUP.is_empty() { format!("/api/{}", K::VERSION) } else { format!("/apis/{}", K::API_VERSION) };
        if let Some(ns) = &self.namespace {
            path.push_str("/namespaces/");
            encode_into(&mut path, ns);
        }
        path.push('/');
        path.push_str(K::URL_PATH_SEGMENT);
        path
    }

    fn object_path(&self, name: &str, subresource: Option<&str>) -> Result<String> {
        if self.namespace.is_none() && is_namespaced::<K>() {
            return Err(Error::NamespaceRequired { kind: K::KIND });
        }
        if name.is_empty() {
            return Err(Error::MissingName);
        }
        let mut path = self.collection_path();
        path.push('/');
        encode_into(&mut path, name);
        if let Some(sub) = subresource {
            path.push('/');
            path.push_str(sub);
        }
        Ok(path)
    }
}

fn encode<K: Serialize>(object: &K) -> Result<Vec<u8>> {
    serde_json::to_vec(object).map_err(Error::Encode)
}

/// Decodes a list, skipping (and logging) items that are not valid `K`s so
/// that one bad object cannot blind a controller to all the others.
fn decode_list<K: Object>(bytes: &[u8], what: &str) -> Result<ObjectList<K>> {
    #[derive(serde::Deserialize)]
    struct RawList {
        #[serde(default)]
        metadata: ListMeta,
        #[serde(default)]
        items: Option<Vec<Value>>,
    }
    let raw: RawList = decode(bytes, what)?;
    let mut items = Vec::with_capacity(raw.items.as_ref().map_or(0, Vec::len));
    for item in raw.items.unwrap_or_default() {
        match serde_json::from_value::<K>(item) {
            Ok(o) => items.push(o),
            Err(e) => {
                tracing::warn!(kind = K::KIND, list = what, error = %e, "skipping a list item that does not decode")
            }
        }
    }
    Ok(ObjectList { metadata: raw.metadata, items })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};

    use super::*;

    fn client() -> Client {
        let mut config = crate::Config::new("https://127.0.0.1:1").expect("config");
        config.insecure_skip_tls_verify = true;
        Client::new(config).expect("client")
    }

    #[test]
    fn paths_follow_group_version_namespace_and_plural() {
        let cms = Api::<ConfigMap>::namespaced(client(), "dev");
        assert_eq!(cms.collection_path(), "/api/v1/namespaces/dev/configmaps");
        assert_eq!(
            cms.object_path("a", Some("status")).ok().as_deref(),
            Some("/api/v1/namespaces/dev/configmaps/a/status")
        );
        let deploys = Api::<Deployment>::all(client());
        assert_eq!(deploys.collection_path(), "/apis/apps/v1/deployments");
        assert!(matches!(deploys.object_path("a", None), Err(Error::NamespaceRequired { kind: "Deployment" })));
        let namespaces = Api::<Namespace>::all(client());
        assert_eq!(namespaces.object_path("kube-system", None).ok().as_deref(), Some("/api/v1/namespaces/kube-system"));
    }

    #[test]
    fn a_list_item_that_does_not_decode_is_skipped() {
        let body = br#"{"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":"7"},
            "items":[{"metadata":{"name":"good"}},{"metadata":{"name":"bad"},"data":{"k":17}}]}"#;
        let list: ObjectList<ConfigMap> = decode_list(body, "test").expect("list decodes");
        assert_eq!(list.resource_version(), "7");
        assert_eq!(list.items.len(), 1);
        assert_eq!(list.items[0].metadata.name.as_deref(), Some("good"));
    }
}
