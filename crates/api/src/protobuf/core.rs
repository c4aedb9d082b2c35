//! Message tables of `k8s.io/api/core/v1`: everything a Pod, Node,
//! Namespace, Service, Endpoints, Secret, ConfigMap or Event reaches.
//!
//! Field numbers and Go field shapes (pointer or value, `omitempty` or
//! not) are those of the struct tags in `k8s.io/api/core/v1/types.go`,
//! which `generated.proto` is generated from; the fields added since
//! Kubernetes 1.30 were checked against the current `generated.proto`.
//! Fields are listed in Go struct order, the order Kubernetes' JSON
//! encoding writes them in, and messages in the order of `types.go`.
//! `tests.rs` checks every name and type against the 1.33 schemas.

use super::message::*;
use super::meta::{CONDITION, LABEL_SELECTOR, OBJECT_META};

pub(super) static VOLUME: Message = Message::new("core.v1.Volume", &[
    (1, "name", always(STRING)),
    (2, "", inline(&VOLUME_SOURCE)),
]);

pub(super) static VOLUME_SOURCE: Message = Message::new("core.v1.VolumeSource", &[
    (1, "hostPath", ptr(msg(&HOST_PATH_VOLUME_SOURCE))),
    (2, "emptyDir", ptr(msg(&EMPTY_DIR_VOLUME_SOURCE))),
    (3, "gcePersistentDisk", ptr(msg(&GCE_PERSISTENT_DISK_VOLUME_SOURCE))),
    (4, "awsElasticBlockStore", ptr(msg(&AWS_ELASTIC_BLOCK_STORE_VOLUME_SOURCE))),
    (5, "gitRepo", ptr(msg(&GIT_REPO_VOLUME_SOURCE))),
    (6, "secret", ptr(msg(&SECRET_VOLUME_SOURCE))),
    (7, "nfs", ptr(msg(&NFS_VOLUME_SOURCE))),
    (8, "iscsi", ptr(msg(&ISCSI_VOLUME_SOURCE))),
    (9, "glusterfs", ptr(msg(&GLUSTERFS_VOLUME_SOURCE))),
    (10, "persistentVolumeClaim", ptr(msg(&PERSISTENT_VOLUME_CLAIM_VOLUME_SOURCE))),
    (11, "rbd", ptr(msg(&RBD_VOLUME_SOURCE))),
    (12, "flexVolume", ptr(msg(&FLEX_VOLUME_SOURCE))),
    (13, "cinder", ptr(msg(&CINDER_VOLUME_SOURCE))),
    (14, "cephfs", ptr(msg(&CEPH_FS_VOLUME_SOURCE))),
    (15, "flocker", ptr(msg(&FLOCKER_VOLUME_SOURCE))),
    (16, "downwardAPI", ptr(msg(&DOWNWARD_API_VOLUME_SOURCE))),
    (17, "fc", ptr(msg(&FC_VOLUME_SOURCE))),
    (18, "azureFile", ptr(msg(&AZURE_FILE_VOLUME_SOURCE))),
    (19, "configMap", ptr(msg(&CONFIG_MAP_VOLUME_SOURCE))),
    (20, "vsphereVolume", ptr(msg(&VSPHERE_VIRTUAL_DISK_VOLUME_SOURCE))),
    (21, "quobyte", ptr(msg(&QUOBYTE_VOLUME_SOURCE))),
    (22, "azureDisk", ptr(msg(&AZURE_DISK_VOLUME_SOURCE))),
    (23, "photonPersistentDisk", ptr(msg(&PHOTON_PERSISTENT_DISK_VOLUME_SOURCE))),
    (26, "projected", ptr(msg(&PROJECTED_VOLUME_SOURCE))),
    (24, "portworxVolume", ptr(msg(&PORTWORX_VOLUME_SOURCE))),
    (25, "scaleIO", ptr(msg(&SCALE_IO_VOLUME_SOURCE))),
    (27, "storageos", ptr(msg(&STORAGE_OS_VOLUME_SOURCE))),
    (28, "csi", ptr(msg(&CSI_VOLUME_SOURCE))),
    (29, "ephemeral", ptr(msg(&EPHEMERAL_VOLUME_SOURCE))),
    (30, "image", ptr(msg(&IMAGE_VOLUME_SOURCE))),
]);

pub(super) static PERSISTENT_VOLUME_CLAIM_VOLUME_SOURCE: Message =
    Message::new("core.v1.PersistentVolumeClaimVolumeSource", &[
        (1, "claimName", always(STRING)),
        (2, "readOnly", value(BOOL)),
    ]);

pub(super) static PERSISTENT_VOLUME_CLAIM: Message = Message::new("core.v1.PersistentVolumeClaim", &[
    (1, "metadata", value(msg(&OBJECT_META))),
    (2, "spec", value(msg(&PERSISTENT_VOLUME_CLAIM_SPEC))),
    (3, "status", value(msg(&PERSISTENT_VOLUME_CLAIM_STATUS))),
]);

pub(super) static PERSISTENT_VOLUME_CLAIM_STATUS: Message = Message::new("core.v1.PersistentVolumeClaimStatus", &[
    (1, "phase", value(STRING)),
    (2, "accessModes", list(STRING)),
    (3, "capacity", map(QUANTITY)),
    (4, "conditions", list(msg(&PERSISTENT_VOLUME_CLAIM_CONDITION))),
    (5, "allocatedResources", map(QUANTITY)),
    (7, "allocatedResourceStatuses", map(STRING)),
    (8, "currentVolumeAttributesClassName", ptr(STRING)),
    (9, "modifyVolumeStatus", ptr(msg(&MODIFY_VOLUME_STATUS))),
]);

pub(super) static PERSISTENT_VOLUME_CLAIM_CONDITION: Message =
    Message::new("core.v1.PersistentVolumeClaimCondition", &[
        (1, "type", always(STRING)),
        (2, "status", always(STRING)),
        (3, "lastProbeTime", value(TIME)),
        (4, "lastTransitionTime", value(TIME)),
        (5, "reason", value(STRING)),
        (6, "message", value(STRING)),
    ]);

pub(super) static MODIFY_VOLUME_STATUS: Message = Message::new("core.v1.ModifyVolumeStatus", &[
    (1, "targetVolumeAttributesClassName", value(STRING)),
    (2, "status", always(STRING)),
]);

pub(super) static PERSISTENT_VOLUME_CLAIM_SPEC: Message = Message::new("core.v1.PersistentVolumeClaimSpec", &[
    (1, "accessModes", list(STRING)),
    (4, "selector", ptr(msg(&LABEL_SELECTOR))),
    (2, "resources", value(msg(&VOLUME_RESOURCE_REQUIREMENTS))),
    (3, "volumeName", value(STRING)),
    (5, "storageClassName", ptr(STRING)),
    (6, "volumeMode", ptr(STRING)),
    (7, "dataSource", ptr(msg(&TYPED_LOCAL_OBJECT_REFERENCE))),
    (8, "dataSourceRef", ptr(msg(&TYPED_OBJECT_REFERENCE))),
    (9, "volumeAttributesClassName", ptr(STRING)),
]);

pub(super) static TYPED_OBJECT_REFERENCE: Message = Message::new("core.v1.TypedObjectReference", &[
    (1, "apiGroup", ptr_or_null(STRING)),
    (2, "kind", always(STRING)),
    (3, "name", always(STRING)),
    (4, "namespace", ptr(STRING)),
]);

pub(super) static HOST_PATH_VOLUME_SOURCE: Message = Message::new("core.v1.HostPathVolumeSource", &[
    (1, "path", always(STRING)),
    (2, "type", ptr(STRING)),
]);

pub(super) static EMPTY_DIR_VOLUME_SOURCE: Message = Message::new("core.v1.EmptyDirVolumeSource", &[
    (1, "medium", value(STRING)),
    (2, "sizeLimit", ptr(QUANTITY)),
]);

pub(super) static GLUSTERFS_VOLUME_SOURCE: Message = Message::new("core.v1.GlusterfsVolumeSource", &[
    (1, "endpoints", always(STRING)),
    (2, "path", always(STRING)),
    (3, "readOnly", value(BOOL)),
]);

pub(super) static RBD_VOLUME_SOURCE: Message = Message::new("core.v1.RBDVolumeSource", &[
    (1, "monitors", list_or_null(STRING)),
    (2, "image", always(STRING)),
    (3, "fsType", value(STRING)),
    (4, "pool", value(STRING)),
    (5, "user", value(STRING)),
    (6, "keyring", value(STRING)),
    (7, "secretRef", ptr(msg(&LOCAL_OBJECT_REFERENCE))),
    (8, "readOnly", value(BOOL)),
]);

pub(super) static CINDER_VOLUME_SOURCE: Message = Message::new("core.v1.CinderVolumeSource", &[
    (1, "volumeID", always(STRING)),
    (2, "fsType", value(STRING)),
    (3, "readOnly", value(BOOL)),
    (4, "secretRef", ptr(msg(&LOCAL_OBJECT_REFERENCE))),
]);

pub(super) static CEPH_FS_VOLUME_SOURCE: Message = Message::new("core.v1.CephFSVolumeSource", &[
    (1, "monitors", list_or_null(STRING)),
    (2, "path", value(STRING)),
    (3, "user", value(STRING)),
    (4, "secretFile", value(STRING)),
    (5, "secretRef", ptr(msg(&LOCAL_OBJECT_REFERENCE))),
    (6, "readOnly", value(BOOL)),
]);

pub(super) static FLOCKER_VOLUME_SOURCE: Message = Message::new("core.v1.FlockerVolumeSource", &[
    (1, "datasetName", value(STRING)),
    (2, "datasetUUID", value(STRING)),
]);

pub(super) static GCE_PERSISTENT_DISK_VOLUME_SOURCE: Message =
    Message::new("core.v1.GCEPersistentDiskVolumeSource", &[
        (1, "pdName", always(STRING)),
        (2, "fsType", value(STRING)),
        (3, "partition", value(INT32)),
        (4, "readOnly", value(BOOL)),
    ]);

pub(super) static QUOBYTE_VOLUME_SOURCE: Message = Message::new("core.v1.QuobyteVolumeSource", &[
    (1, "registry", always(STRING)),
    (2, "volume", always(STRING)),
    (3, "readOnly", value(BOOL)),
    (4, "user", value(STRING)),
    (5, "group", value(STRING)),
    (6, "tenant", value(STRING)),
]);

pub(super) static FLEX_VOLUME_SOURCE: Message = Message::new("core.v1.FlexVolumeSource", &[
    (1, "driver", always(STRING)),
    (2, "fsType", value(STRING)),
    (3, "secretRef", ptr(msg(&LOCAL_OBJECT_REFERENCE))),
    (4, "readOnly", value(BOOL)),
    (5, "options", map(STRING)),
]);

pub(super) static AWS_ELASTIC_BLOCK_STORE_VOLUME_SOURCE: Message =
    Message::new("core.v1.AWSElasticBlockStoreVolumeSource", &[
        (1, "volumeID", always(STRING)),
        (2, "fsType", value(STRING)),
        (3, "partition", value(INT32)),
        (4, "readOnly", value(BOOL)),
    ]);

pub(super) static GIT_REPO_VOLUME_SOURCE: Message = Message::new("core.v1.GitRepoVolumeSource", &[
    (1, "repository", always(STRING)),
    (2, "revision", value(STRING)),
    (3, "directory", value(STRING)),
]);

pub(super) static SECRET_VOLUME_SOURCE: Message = Message::new("core.v1.SecretVolumeSource", &[
    (1, "secretName", value(STRING)),
    (2, "items", list(msg(&KEY_TO_PATH))),
    (3, "defaultMode", ptr(INT32)),
    (4, "optional", ptr(BOOL)),
]);

pub(super) static SECRET_PROJECTION: Message = Message::new("core.v1.SecretProjection", &[
    (1, "", inline(&LOCAL_OBJECT_REFERENCE)),
    (2, "items", list(msg(&KEY_TO_PATH))),
    (4, "optional", ptr(BOOL)),
]);

pub(super) static NFS_VOLUME_SOURCE: Message = Message::new("core.v1.NFSVolumeSource", &[
    (1, "server", always(STRING)),
    (2, "path", always(STRING)),
    (3, "readOnly", value(BOOL)),
]);

pub(super) static ISCSI_VOLUME_SOURCE: Message = Message::new("core.v1.ISCSIVolumeSource", &[
    (1, "targetPortal", always(STRING)),
    (2, "iqn", always(STRING)),
    (3, "lun", always(INT32)),
    (4, "iscsiInterface", value(STRING)),
    (5, "fsType", value(STRING)),
    (6, "readOnly", value(BOOL)),
    (7, "portals", list(STRING)),
    (8, "chapAuthDiscovery", value(BOOL)),
    (11, "chapAuthSession", value(BOOL)),
    (10, "secretRef", ptr(msg(&LOCAL_OBJECT_REFERENCE))),
    (12, "initiatorName", ptr(STRING)),
]);

pub(super) static FC_VOLUME_SOURCE: Message = Message::new("core.v1.FCVolumeSource", &[
    (1, "targetWWNs", list(STRING)),
    (2, "lun", ptr(INT32)),
    (3, "fsType", value(STRING)),
    (4, "readOnly", value(BOOL)),
    (5, "wwids", list(STRING)),
]);

pub(super) static AZURE_FILE_VOLUME_SOURCE: Message = Message::new("core.v1.AzureFileVolumeSource", &[
    (1, "secretName", always(STRING)),
    (2, "shareName", always(STRING)),
    (3, "readOnly", value(BOOL)),
]);

pub(super) static VSPHERE_VIRTUAL_DISK_VOLUME_SOURCE: Message =
    Message::new("core.v1.VsphereVirtualDiskVolumeSource", &[
        (1, "volumePath", always(STRING)),
        (2, "fsType", value(STRING)),
        (3, "storagePolicyName", value(STRING)),
        (4, "storagePolicyID", value(STRING)),
    ]);

pub(super) static PHOTON_PERSISTENT_DISK_VOLUME_SOURCE: Message =
    Message::new("core.v1.PhotonPersistentDiskVolumeSource", &[
        (1, "pdID", always(STRING)),
        (2, "fsType", value(STRING)),
    ]);

pub(super) static AZURE_DISK_VOLUME_SOURCE: Message = Message::new("core.v1.AzureDiskVolumeSource", &[
    (1, "diskName", always(STRING)),
    (2, "diskURI", always(STRING)),
    (3, "cachingMode", ptr(STRING)),
    (4, "fsType", ptr(STRING)),
    (5, "readOnly", ptr(BOOL)),
    (6, "kind", ptr(STRING)),
]);

pub(super) static PORTWORX_VOLUME_SOURCE: Message = Message::new("core.v1.PortworxVolumeSource", &[
    (1, "volumeID", always(STRING)),
    (2, "fsType", value(STRING)),
    (3, "readOnly", value(BOOL)),
]);

pub(super) static SCALE_IO_VOLUME_SOURCE: Message = Message::new("core.v1.ScaleIOVolumeSource", &[
    (1, "gateway", always(STRING)),
    (2, "system", always(STRING)),
    (3, "secretRef", ptr_or_null(msg(&LOCAL_OBJECT_REFERENCE))),
    (4, "sslEnabled", value(BOOL)),
    (5, "protectionDomain", value(STRING)),
    (6, "storagePool", value(STRING)),
    (7, "storageMode", value(STRING)),
    (8, "volumeName", value(STRING)),
    (9, "fsType", value(STRING)),
    (10, "readOnly", value(BOOL)),
]);

pub(super) static STORAGE_OS_VOLUME_SOURCE: Message = Message::new("core.v1.StorageOSVolumeSource", &[
    (1, "volumeName", value(STRING)),
    (2, "volumeNamespace", value(STRING)),
    (3, "fsType", value(STRING)),
    (4, "readOnly", value(BOOL)),
    (5, "secretRef", ptr(msg(&LOCAL_OBJECT_REFERENCE))),
]);

pub(super) static CONFIG_MAP_VOLUME_SOURCE: Message = Message::new("core.v1.ConfigMapVolumeSource", &[
    (1, "", inline(&LOCAL_OBJECT_REFERENCE)),
    (2, "items", list(msg(&KEY_TO_PATH))),
    (3, "defaultMode", ptr(INT32)),
    (4, "optional", ptr(BOOL)),
]);

pub(super) static CONFIG_MAP_PROJECTION: Message = Message::new("core.v1.ConfigMapProjection", &[
    (1, "", inline(&LOCAL_OBJECT_REFERENCE)),
    (2, "items", list(msg(&KEY_TO_PATH))),
    (4, "optional", ptr(BOOL)),
]);

pub(super) static SERVICE_ACCOUNT_TOKEN_PROJECTION: Message =
    Message::new("core.v1.ServiceAccountTokenProjection", &[
        (1, "audience", value(STRING)),
        (2, "expirationSeconds", ptr(INT64)),
        (3, "path", always(STRING)),
    ]);

pub(super) static CLUSTER_TRUST_BUNDLE_PROJECTION: Message =
    Message::new("core.v1.ClusterTrustBundleProjection", &[
        (1, "name", ptr(STRING)),
        (2, "signerName", ptr(STRING)),
        (3, "labelSelector", ptr(msg(&LABEL_SELECTOR))),
        (5, "optional", ptr(BOOL)),
        (4, "path", always(STRING)),
    ]);

pub(super) static PROJECTED_VOLUME_SOURCE: Message = Message::new("core.v1.ProjectedVolumeSource", &[
    (1, "sources", list_or_null(msg(&VOLUME_PROJECTION))),
    (2, "defaultMode", ptr(INT32)),
]);

pub(super) static VOLUME_PROJECTION: Message = Message::new("core.v1.VolumeProjection", &[
    (1, "secret", ptr(msg(&SECRET_PROJECTION))),
    (2, "downwardAPI", ptr(msg(&DOWNWARD_API_PROJECTION))),
    (3, "configMap", ptr(msg(&CONFIG_MAP_PROJECTION))),
    (4, "serviceAccountToken", ptr(msg(&SERVICE_ACCOUNT_TOKEN_PROJECTION))),
    (5, "clusterTrustBundle", ptr(msg(&CLUSTER_TRUST_BUNDLE_PROJECTION))),
]);

pub(super) static KEY_TO_PATH: Message = Message::new("core.v1.KeyToPath", &[
    (1, "key", always(STRING)),
    (2, "path", always(STRING)),
    (3, "mode", ptr(INT32)),
]);

pub(super) static CSI_VOLUME_SOURCE: Message = Message::new("core.v1.CSIVolumeSource", &[
    (1, "driver", always(STRING)),
    (2, "readOnly", ptr(BOOL)),
    (3, "fsType", ptr(STRING)),
    (4, "volumeAttributes", map(STRING)),
    (5, "nodePublishSecretRef", ptr(msg(&LOCAL_OBJECT_REFERENCE))),
]);

pub(super) static EPHEMERAL_VOLUME_SOURCE: Message = Message::new("core.v1.EphemeralVolumeSource", &[
    (1, "volumeClaimTemplate", ptr(msg(&PERSISTENT_VOLUME_CLAIM_TEMPLATE))),
]);

pub(super) static PERSISTENT_VOLUME_CLAIM_TEMPLATE: Message =
    Message::new("core.v1.PersistentVolumeClaimTemplate", &[
        (1, "metadata", value(msg(&OBJECT_META))),
        (2, "spec", value(msg(&PERSISTENT_VOLUME_CLAIM_SPEC))),
    ]);

pub(super) static CONTAINER_PORT: Message = Message::new("core.v1.ContainerPort", &[
    (1, "name", value(STRING)),
    (2, "hostPort", value(INT32)),
    (3, "containerPort", always(INT32)),
    (4, "protocol", value(STRING)),
    (5, "hostIP", value(STRING)),
]);

pub(super) static VOLUME_MOUNT: Message = Message::new("core.v1.VolumeMount", &[
    (1, "name", always(STRING)),
    (2, "readOnly", value(BOOL)),
    (7, "recursiveReadOnly", ptr(STRING)),
    (3, "mountPath", always(STRING)),
    (4, "subPath", value(STRING)),
    (5, "mountPropagation", ptr(STRING)),
    (6, "subPathExpr", value(STRING)),
]);

pub(super) static VOLUME_DEVICE: Message = Message::new("core.v1.VolumeDevice", &[
    (1, "name", always(STRING)),
    (2, "devicePath", always(STRING)),
]);

pub(super) static ENV_VAR: Message = Message::new("core.v1.EnvVar", &[
    (1, "name", always(STRING)),
    (2, "value", value(STRING)),
    (3, "valueFrom", ptr(msg(&ENV_VAR_SOURCE))),
]);

pub(super) static ENV_VAR_SOURCE: Message = Message::new("core.v1.EnvVarSource", &[
    (1, "fieldRef", ptr(msg(&OBJECT_FIELD_SELECTOR))),
    (2, "resourceFieldRef", ptr(msg(&RESOURCE_FIELD_SELECTOR))),
    (3, "configMapKeyRef", ptr(msg(&CONFIG_MAP_KEY_SELECTOR))),
    (4, "secretKeyRef", ptr(msg(&SECRET_KEY_SELECTOR))),
]);

pub(super) static OBJECT_FIELD_SELECTOR: Message = Message::new("core.v1.ObjectFieldSelector", &[
    (1, "apiVersion", value(STRING)),
    (2, "fieldPath", always(STRING)),
]);

pub(super) static RESOURCE_FIELD_SELECTOR: Message = Message::new("core.v1.ResourceFieldSelector", &[
    (1, "containerName", value(STRING)),
    (2, "resource", always(STRING)),
    (3, "divisor", value(QUANTITY)),
]);

pub(super) static CONFIG_MAP_KEY_SELECTOR: Message = Message::new("core.v1.ConfigMapKeySelector", &[
    (1, "", inline(&LOCAL_OBJECT_REFERENCE)),
    (2, "key", always(STRING)),
    (3, "optional", ptr(BOOL)),
]);

pub(super) static SECRET_KEY_SELECTOR: Message = Message::new("core.v1.SecretKeySelector", &[
    (1, "", inline(&LOCAL_OBJECT_REFERENCE)),
    (2, "key", always(STRING)),
    (3, "optional", ptr(BOOL)),
]);

pub(super) static ENV_FROM_SOURCE: Message = Message::new("core.v1.EnvFromSource", &[
    (1, "prefix", value(STRING)),
    (2, "configMapRef", ptr(msg(&CONFIG_MAP_ENV_SOURCE))),
    (3, "secretRef", ptr(msg(&SECRET_ENV_SOURCE))),
]);

pub(super) static CONFIG_MAP_ENV_SOURCE: Message = Message::new("core.v1.ConfigMapEnvSource", &[
    (1, "", inline(&LOCAL_OBJECT_REFERENCE)),
    (2, "optional", ptr(BOOL)),
]);

pub(super) static SECRET_ENV_SOURCE: Message = Message::new("core.v1.SecretEnvSource", &[
    (1, "", inline(&LOCAL_OBJECT_REFERENCE)),
    (2, "optional", ptr(BOOL)),
]);

pub(super) static HTTP_HEADER: Message = Message::new("core.v1.HTTPHeader", &[
    (1, "name", always(STRING)),
    (2, "value", always(STRING)),
]);

pub(super) static HTTP_GET_ACTION: Message = Message::new("core.v1.HTTPGetAction", &[
    (1, "path", value(STRING)),
    (2, "port", always(INT_OR_STRING)),
    (3, "host", value(STRING)),
    (4, "scheme", value(STRING)),
    (5, "httpHeaders", list(msg(&HTTP_HEADER))),
]);

pub(super) static TCP_SOCKET_ACTION: Message = Message::new("core.v1.TCPSocketAction", &[
    (1, "port", always(INT_OR_STRING)),
    (2, "host", value(STRING)),
]);

pub(super) static GRPC_ACTION: Message = Message::new("core.v1.GRPCAction", &[
    (1, "port", always(INT32)),
    (2, "service", ptr_or_null(STRING)),
]);

pub(super) static EXEC_ACTION: Message = Message::new("core.v1.ExecAction", &[
    (1, "command", list(STRING)),
]);

pub(super) static SLEEP_ACTION: Message = Message::new("core.v1.SleepAction", &[
    (1, "seconds", always(INT64)),
]);

pub(super) static PROBE: Message = Message::new("core.v1.Probe", &[
    (1, "", inline(&PROBE_HANDLER)),
    (2, "initialDelaySeconds", value(INT32)),
    (3, "timeoutSeconds", value(INT32)),
    (4, "periodSeconds", value(INT32)),
    (5, "successThreshold", value(INT32)),
    (6, "failureThreshold", value(INT32)),
    (7, "terminationGracePeriodSeconds", ptr(INT64)),
]);

pub(super) static CONTAINER_RESIZE_POLICY: Message = Message::new("core.v1.ContainerResizePolicy", &[
    (1, "resourceName", always(STRING)),
    (2, "restartPolicy", always(STRING)),
]);

pub(super) static CAPABILITIES: Message = Message::new("core.v1.Capabilities", &[
    (1, "add", list(STRING)),
    (2, "drop", list(STRING)),
]);

pub(super) static RESOURCE_REQUIREMENTS: Message = Message::new("core.v1.ResourceRequirements", &[
    (1, "limits", map(QUANTITY)),
    (2, "requests", map(QUANTITY)),
    (3, "claims", list(msg(&RESOURCE_CLAIM))),
]);

pub(super) static VOLUME_RESOURCE_REQUIREMENTS: Message =
    Message::new("core.v1.VolumeResourceRequirements", &[
        (1, "limits", map(QUANTITY)),
        (2, "requests", map(QUANTITY)),
    ]);

pub(super) static RESOURCE_CLAIM: Message = Message::new("core.v1.ResourceClaim", &[
    (1, "name", always(STRING)),
    (2, "request", value(STRING)),
]);

pub(super) static CONTAINER: Message = Message::new("core.v1.Container", &[
    (1, "name", always(STRING)),
    (2, "image", value(STRING)),
    (3, "command", list(STRING)),
    (4, "args", list(STRING)),
    (5, "workingDir", value(STRING)),
    (6, "ports", list(msg(&CONTAINER_PORT))),
    (19, "envFrom", list(msg(&ENV_FROM_SOURCE))),
    (7, "env", list(msg(&ENV_VAR))),
    (8, "resources", value(msg(&RESOURCE_REQUIREMENTS))),
    (23, "resizePolicy", list(msg(&CONTAINER_RESIZE_POLICY))),
    (24, "restartPolicy", ptr(STRING)),
    (9, "volumeMounts", list(msg(&VOLUME_MOUNT))),
    (21, "volumeDevices", list(msg(&VOLUME_DEVICE))),
    (10, "livenessProbe", ptr(msg(&PROBE))),
    (11, "readinessProbe", ptr(msg(&PROBE))),
    (22, "startupProbe", ptr(msg(&PROBE))),
    (12, "lifecycle", ptr(msg(&LIFECYCLE))),
    (13, "terminationMessagePath", value(STRING)),
    (20, "terminationMessagePolicy", value(STRING)),
    (14, "imagePullPolicy", value(STRING)),
    (15, "securityContext", ptr(msg(&SECURITY_CONTEXT))),
    (16, "stdin", value(BOOL)),
    (17, "stdinOnce", value(BOOL)),
    (18, "tty", value(BOOL)),
]);

pub(super) static PROBE_HANDLER: Message = Message::new("core.v1.ProbeHandler", &[
    (1, "exec", ptr(msg(&EXEC_ACTION))),
    (2, "httpGet", ptr(msg(&HTTP_GET_ACTION))),
    (3, "tcpSocket", ptr(msg(&TCP_SOCKET_ACTION))),
    (4, "grpc", ptr(msg(&GRPC_ACTION))),
]);

pub(super) static LIFECYCLE_HANDLER: Message = Message::new("core.v1.LifecycleHandler", &[
    (1, "exec", ptr(msg(&EXEC_ACTION))),
    (2, "httpGet", ptr(msg(&HTTP_GET_ACTION))),
    (3, "tcpSocket", ptr(msg(&TCP_SOCKET_ACTION))),
    (4, "sleep", ptr(msg(&SLEEP_ACTION))),
]);

pub(super) static LIFECYCLE: Message = Message::new("core.v1.Lifecycle", &[
    (1, "postStart", ptr(msg(&LIFECYCLE_HANDLER))),
    (2, "preStop", ptr(msg(&LIFECYCLE_HANDLER))),
    (3, "stopSignal", ptr(STRING)),
]);

pub(super) static CONTAINER_STATE_WAITING: Message = Message::new("core.v1.ContainerStateWaiting", &[
    (1, "reason", value(STRING)),
    (2, "message", value(STRING)),
]);

pub(super) static CONTAINER_STATE_RUNNING: Message = Message::new("core.v1.ContainerStateRunning", &[
    (1, "startedAt", value(TIME)),
]);

pub(super) static CONTAINER_STATE_TERMINATED: Message =
    Message::new("core.v1.ContainerStateTerminated", &[
        (1, "exitCode", always(INT32)),
        (2, "signal", value(INT32)),
        (3, "reason", value(STRING)),
        (4, "message", value(STRING)),
        (5, "startedAt", value(TIME)),
        (6, "finishedAt", value(TIME)),
        (7, "containerID", value(STRING)),
    ]);

pub(super) static CONTAINER_STATE: Message = Message::new("core.v1.ContainerState", &[
    (1, "waiting", ptr(msg(&CONTAINER_STATE_WAITING))),
    (2, "running", ptr(msg(&CONTAINER_STATE_RUNNING))),
    (3, "terminated", ptr(msg(&CONTAINER_STATE_TERMINATED))),
]);

pub(super) static CONTAINER_STATUS: Message = Message::new("core.v1.ContainerStatus", &[
    (1, "name", always(STRING)),
    (2, "state", value(msg(&CONTAINER_STATE))),
    (3, "lastState", value(msg(&CONTAINER_STATE))),
    (4, "ready", always(BOOL)),
    (5, "restartCount", always(INT32)),
    (6, "image", always(STRING)),
    (7, "imageID", always(STRING)),
    (8, "containerID", value(STRING)),
    (9, "started", ptr(BOOL)),
    (10, "allocatedResources", map(QUANTITY)),
    (11, "resources", ptr(msg(&RESOURCE_REQUIREMENTS))),
    (12, "volumeMounts", list(msg(&VOLUME_MOUNT_STATUS))),
    (13, "user", ptr(msg(&CONTAINER_USER))),
    (14, "allocatedResourcesStatus", list(msg(&RESOURCE_STATUS))),
    (15, "stopSignal", ptr(STRING)),
]);

pub(super) static POD_CONDITION: Message = Message::new("core.v1.PodCondition", &[
    (1, "type", always(STRING)),
    (7, "observedGeneration", value(INT64)),
    (2, "status", always(STRING)),
    (3, "lastProbeTime", value(TIME)),
    (4, "lastTransitionTime", value(TIME)),
    (5, "reason", value(STRING)),
    (6, "message", value(STRING)),
]);

pub(super) static NODE_SELECTOR: Message = Message::new("core.v1.NodeSelector", &[
    (1, "nodeSelectorTerms", list_or_null(msg(&NODE_SELECTOR_TERM))),
]);

pub(super) static NODE_SELECTOR_TERM: Message = Message::new("core.v1.NodeSelectorTerm", &[
    (1, "matchExpressions", list(msg(&NODE_SELECTOR_REQUIREMENT))),
    (2, "matchFields", list(msg(&NODE_SELECTOR_REQUIREMENT))),
]);

pub(super) static NODE_SELECTOR_REQUIREMENT: Message = Message::new("core.v1.NodeSelectorRequirement", &[
    (1, "key", always(STRING)),
    (2, "operator", always(STRING)),
    (3, "values", list(STRING)),
]);

pub(super) static AFFINITY: Message = Message::new("core.v1.Affinity", &[
    (1, "nodeAffinity", ptr(msg(&NODE_AFFINITY))),
    (2, "podAffinity", ptr(msg(&POD_AFFINITY))),
    (3, "podAntiAffinity", ptr(msg(&POD_ANTI_AFFINITY))),
]);

pub(super) static POD_AFFINITY: Message = Message::new("core.v1.PodAffinity", &[
    (1, "requiredDuringSchedulingIgnoredDuringExecution", list(msg(&POD_AFFINITY_TERM))),
    (2, "preferredDuringSchedulingIgnoredDuringExecution", list(msg(&WEIGHTED_POD_AFFINITY_TERM))),
]);

pub(super) static POD_ANTI_AFFINITY: Message = Message::new("core.v1.PodAntiAffinity", &[
    (1, "requiredDuringSchedulingIgnoredDuringExecution", list(msg(&POD_AFFINITY_TERM))),
    (2, "preferredDuringSchedulingIgnoredDuringExecution", list(msg(&WEIGHTED_POD_AFFINITY_TERM))),
]);

pub(super) static WEIGHTED_POD_AFFINITY_TERM: Message = Message::new("core.v1.WeightedPodAffinityTerm", &[
    (1, "weight", always(INT32)),
    (2, "podAffinityTerm", value(msg(&POD_AFFINITY_TERM))),
]);

pub(super) static POD_AFFINITY_TERM: Message = Message::new("core.v1.PodAffinityTerm", &[
    (1, "labelSelector", ptr(msg(&LABEL_SELECTOR))),
    (2, "namespaces", list(STRING)),
    (3, "topologyKey", always(STRING)),
    (4, "namespaceSelector", ptr(msg(&LABEL_SELECTOR))),
    (5, "matchLabelKeys", list(STRING)),
    (6, "mismatchLabelKeys", list(STRING)),
]);

pub(super) static NODE_AFFINITY: Message = Message::new("core.v1.NodeAffinity", &[
    (1, "requiredDuringSchedulingIgnoredDuringExecution", ptr(msg(&NODE_SELECTOR))),
    (2, "preferredDuringSchedulingIgnoredDuringExecution", list(msg(&PREFERRED_SCHEDULING_TERM))),
]);

pub(super) static PREFERRED_SCHEDULING_TERM: Message = Message::new("core.v1.PreferredSchedulingTerm", &[
    (1, "weight", always(INT32)),
    (2, "preference", value(msg(&NODE_SELECTOR_TERM))),
]);

pub(super) static TAINT: Message = Message::new("core.v1.Taint", &[
    (1, "key", always(STRING)),
    (2, "value", value(STRING)),
    (3, "effect", always(STRING)),
    (4, "timeAdded", ptr(TIME)),
]);

pub(super) static TOLERATION: Message = Message::new("core.v1.Toleration", &[
    (1, "key", value(STRING)),
    (2, "operator", value(STRING)),
    (3, "value", value(STRING)),
    (4, "effect", value(STRING)),
    (5, "tolerationSeconds", ptr(INT64)),
]);

pub(super) static POD_READINESS_GATE: Message = Message::new("core.v1.PodReadinessGate", &[
    (1, "conditionType", always(STRING)),
]);

pub(super) static POD_SPEC: Message = Message::new("core.v1.PodSpec", &[
    (1, "volumes", list(msg(&VOLUME))),
    (20, "initContainers", list(msg(&CONTAINER))),
    (2, "containers", list_or_null(msg(&CONTAINER))),
    (34, "ephemeralContainers", list(msg(&EPHEMERAL_CONTAINER))),
    (3, "restartPolicy", value(STRING)),
    (4, "terminationGracePeriodSeconds", ptr(INT64)),
    (5, "activeDeadlineSeconds", ptr(INT64)),
    (6, "dnsPolicy", value(STRING)),
    (7, "nodeSelector", map(STRING)),
    (8, "serviceAccountName", value(STRING)),
    (9, "serviceAccount", value(STRING)),
    (21, "automountServiceAccountToken", ptr(BOOL)),
    (10, "nodeName", value(STRING)),
    (11, "hostNetwork", value(BOOL)),
    (12, "hostPID", value(BOOL)),
    (13, "hostIPC", value(BOOL)),
    (27, "shareProcessNamespace", ptr(BOOL)),
    (14, "securityContext", ptr(msg(&POD_SECURITY_CONTEXT))),
    (15, "imagePullSecrets", list(msg(&LOCAL_OBJECT_REFERENCE))),
    (16, "hostname", value(STRING)),
    (17, "subdomain", value(STRING)),
    (18, "affinity", ptr(msg(&AFFINITY))),
    (19, "schedulerName", value(STRING)),
    (22, "tolerations", list(msg(&TOLERATION))),
    (23, "hostAliases", list(msg(&HOST_ALIAS))),
    (24, "priorityClassName", value(STRING)),
    (25, "priority", ptr(INT32)),
    (26, "dnsConfig", ptr(msg(&POD_DNS_CONFIG))),
    (28, "readinessGates", list(msg(&POD_READINESS_GATE))),
    (29, "runtimeClassName", ptr(STRING)),
    (30, "enableServiceLinks", ptr(BOOL)),
    (31, "preemptionPolicy", ptr(STRING)),
    (32, "overhead", map(QUANTITY)),
    (33, "topologySpreadConstraints", list(msg(&TOPOLOGY_SPREAD_CONSTRAINT))),
    (35, "setHostnameAsFQDN", ptr(BOOL)),
    (36, "os", ptr(msg(&POD_OS))),
    (37, "hostUsers", ptr(BOOL)),
    (38, "schedulingGates", list(msg(&POD_SCHEDULING_GATE))),
    (39, "resourceClaims", list(msg(&POD_RESOURCE_CLAIM))),
    (40, "resources", ptr(msg(&RESOURCE_REQUIREMENTS))),
]);

pub(super) static POD_RESOURCE_CLAIM: Message = Message::new("core.v1.PodResourceClaim", &[
    (1, "name", always(STRING)),
    (3, "resourceClaimName", ptr(STRING)),
    (4, "resourceClaimTemplateName", ptr(STRING)),
]);

pub(super) static POD_RESOURCE_CLAIM_STATUS: Message = Message::new("core.v1.PodResourceClaimStatus", &[
    (1, "name", always(STRING)),
    (2, "resourceClaimName", ptr(STRING)),
]);

pub(super) static POD_OS: Message = Message::new("core.v1.PodOS", &[
    (1, "name", always(STRING)),
]);

pub(super) static POD_SCHEDULING_GATE: Message = Message::new("core.v1.PodSchedulingGate", &[
    (1, "name", always(STRING)),
]);

pub(super) static TOPOLOGY_SPREAD_CONSTRAINT: Message = Message::new("core.v1.TopologySpreadConstraint", &[
    (1, "maxSkew", always(INT32)),
    (2, "topologyKey", always(STRING)),
    (3, "whenUnsatisfiable", always(STRING)),
    (4, "labelSelector", ptr(msg(&LABEL_SELECTOR))),
    (5, "minDomains", ptr(INT32)),
    (6, "nodeAffinityPolicy", ptr(STRING)),
    (7, "nodeTaintsPolicy", ptr(STRING)),
    (8, "matchLabelKeys", list(STRING)),
]);

pub(super) static HOST_ALIAS: Message = Message::new("core.v1.HostAlias", &[
    (1, "ip", always(STRING)),
    (2, "hostnames", list(STRING)),
]);

pub(super) static POD_SECURITY_CONTEXT: Message = Message::new("core.v1.PodSecurityContext", &[
    (1, "seLinuxOptions", ptr(msg(&SE_LINUX_OPTIONS))),
    (8, "windowsOptions", ptr(msg(&WINDOWS_SECURITY_CONTEXT_OPTIONS))),
    (2, "runAsUser", ptr(INT64)),
    (6, "runAsGroup", ptr(INT64)),
    (3, "runAsNonRoot", ptr(BOOL)),
    (4, "supplementalGroups", list(INT64)),
    (12, "supplementalGroupsPolicy", ptr(STRING)),
    (5, "fsGroup", ptr(INT64)),
    (7, "sysctls", list(msg(&SYSCTL))),
    (9, "fsGroupChangePolicy", ptr(STRING)),
    (10, "seccompProfile", ptr(msg(&SECCOMP_PROFILE))),
    (11, "appArmorProfile", ptr(msg(&APP_ARMOR_PROFILE))),
    (13, "seLinuxChangePolicy", ptr(STRING)),
]);

pub(super) static SECCOMP_PROFILE: Message = Message::new("core.v1.SeccompProfile", &[
    (1, "type", always(STRING)),
    (2, "localhostProfile", ptr(STRING)),
]);

pub(super) static APP_ARMOR_PROFILE: Message = Message::new("core.v1.AppArmorProfile", &[
    (1, "type", always(STRING)),
    (2, "localhostProfile", ptr(STRING)),
]);

pub(super) static POD_DNS_CONFIG: Message = Message::new("core.v1.PodDNSConfig", &[
    (1, "nameservers", list(STRING)),
    (2, "searches", list(STRING)),
    (3, "options", list(msg(&POD_DNS_CONFIG_OPTION))),
]);

pub(super) static POD_DNS_CONFIG_OPTION: Message = Message::new("core.v1.PodDNSConfigOption", &[
    (1, "name", value(STRING)),
    (2, "value", ptr(STRING)),
]);

pub(super) static POD_IP: Message = Message::new("core.v1.PodIP", &[
    (1, "ip", always(STRING)),
]);

pub(super) static HOST_IP: Message = Message::new("core.v1.HostIP", &[
    (1, "ip", always(STRING)),
]);

/// The same fields as [`CONTAINER`]; Go inlines it into
/// `EphemeralContainer`.
pub(super) static EPHEMERAL_CONTAINER_COMMON: Message = Message::new("core.v1.EphemeralContainerCommon", &[
    (1, "name", always(STRING)),
    (2, "image", value(STRING)),
    (3, "command", list(STRING)),
    (4, "args", list(STRING)),
    (5, "workingDir", value(STRING)),
    (6, "ports", list(msg(&CONTAINER_PORT))),
    (19, "envFrom", list(msg(&ENV_FROM_SOURCE))),
    (7, "env", list(msg(&ENV_VAR))),
    (8, "resources", value(msg(&RESOURCE_REQUIREMENTS))),
    (23, "resizePolicy", list(msg(&CONTAINER_RESIZE_POLICY))),
    (24, "restartPolicy", ptr(STRING)),
    (9, "volumeMounts", list(msg(&VOLUME_MOUNT))),
    (21, "volumeDevices", list(msg(&VOLUME_DEVICE))),
    (10, "livenessProbe", ptr(msg(&PROBE))),
    (11, "readinessProbe", ptr(msg(&PROBE))),
    (22, "startupProbe", ptr(msg(&PROBE))),
    (12, "lifecycle", ptr(msg(&LIFECYCLE))),
    (13, "terminationMessagePath", value(STRING)),
    (20, "terminationMessagePolicy", value(STRING)),
    (14, "imagePullPolicy", value(STRING)),
    (15, "securityContext", ptr(msg(&SECURITY_CONTEXT))),
    (16, "stdin", value(BOOL)),
    (17, "stdinOnce", value(BOOL)),
    (18, "tty", value(BOOL)),
]);

pub(super) static EPHEMERAL_CONTAINER: Message = Message::new("core.v1.EphemeralContainer", &[
    (1, "", inline(&EPHEMERAL_CONTAINER_COMMON)),
    (2, "targetContainerName", value(STRING)),
]);

pub(super) static POD_STATUS: Message = Message::new("core.v1.PodStatus", &[
    (17, "observedGeneration", value(INT64)),
    (1, "phase", value(STRING)),
    (2, "conditions", list(msg(&POD_CONDITION))),
    (3, "message", value(STRING)),
    (4, "reason", value(STRING)),
    (11, "nominatedNodeName", value(STRING)),
    (5, "hostIP", value(STRING)),
    (16, "hostIPs", list(msg(&HOST_IP))),
    (6, "podIP", value(STRING)),
    (12, "podIPs", list(msg(&POD_IP))),
    (7, "startTime", ptr(TIME)),
    (10, "initContainerStatuses", list(msg(&CONTAINER_STATUS))),
    (8, "containerStatuses", list(msg(&CONTAINER_STATUS))),
    (9, "qosClass", value(STRING)),
    (13, "ephemeralContainerStatuses", list(msg(&CONTAINER_STATUS))),
    (14, "resize", value(STRING)),
    (15, "resourceClaimStatuses", list(msg(&POD_RESOURCE_CLAIM_STATUS))),
]);

pub(super) static POD: Message = Message::new("core.v1.Pod", &[
    (1, "metadata", value(msg(&OBJECT_META))),
    (2, "spec", value(msg(&POD_SPEC))),
    (3, "status", value(msg(&POD_STATUS))),
]);

pub(super) static POD_TEMPLATE_SPEC: Message = Message::new("core.v1.PodTemplateSpec", &[
    (1, "metadata", value(msg(&OBJECT_META))),
    (2, "spec", value(msg(&POD_SPEC))),
]);

pub(super) static SESSION_AFFINITY_CONFIG: Message = Message::new("core.v1.SessionAffinityConfig", &[
    (1, "clientIP", ptr(msg(&CLIENT_IP_CONFIG))),
]);

pub(super) static CLIENT_IP_CONFIG: Message = Message::new("core.v1.ClientIPConfig", &[
    (1, "timeoutSeconds", ptr(INT32)),
]);

pub(super) static SERVICE_STATUS: Message = Message::new("core.v1.ServiceStatus", &[
    (1, "loadBalancer", value(msg(&LOAD_BALANCER_STATUS))),
    (2, "conditions", list(msg(&CONDITION))),
]);

pub(super) static LOAD_BALANCER_STATUS: Message = Message::new("core.v1.LoadBalancerStatus", &[
    (1, "ingress", list(msg(&LOAD_BALANCER_INGRESS))),
]);

pub(super) static LOAD_BALANCER_INGRESS: Message = Message::new("core.v1.LoadBalancerIngress", &[
    (1, "ip", value(STRING)),
    (2, "hostname", value(STRING)),
    (3, "ipMode", ptr(STRING)),
    (4, "ports", list(msg(&PORT_STATUS))),
]);

pub(super) static SERVICE_SPEC: Message = Message::new("core.v1.ServiceSpec", &[
    (1, "ports", list(msg(&SERVICE_PORT))),
    (2, "selector", map(STRING)),
    (3, "clusterIP", value(STRING)),
    (18, "clusterIPs", list(STRING)),
    (4, "type", value(STRING)),
    (5, "externalIPs", list(STRING)),
    (7, "sessionAffinity", value(STRING)),
    (8, "loadBalancerIP", value(STRING)),
    (9, "loadBalancerSourceRanges", list(STRING)),
    (10, "externalName", value(STRING)),
    (11, "externalTrafficPolicy", value(STRING)),
    (12, "healthCheckNodePort", value(INT32)),
    (13, "publishNotReadyAddresses", value(BOOL)),
    (14, "sessionAffinityConfig", ptr(msg(&SESSION_AFFINITY_CONFIG))),
    (19, "ipFamilies", list(STRING)),
    (17, "ipFamilyPolicy", ptr(STRING)),
    (20, "allocateLoadBalancerNodePorts", ptr(BOOL)),
    (21, "loadBalancerClass", ptr(STRING)),
    (22, "internalTrafficPolicy", ptr(STRING)),
    (23, "trafficDistribution", ptr(STRING)),
]);

pub(super) static SERVICE_PORT: Message = Message::new("core.v1.ServicePort", &[
    (1, "name", value(STRING)),
    (2, "protocol", value(STRING)),
    (6, "appProtocol", ptr(STRING)),
    (3, "port", always(INT32)),
    (4, "targetPort", value(INT_OR_STRING)),
    (5, "nodePort", value(INT32)),
]);

pub(super) static SERVICE: Message = Message::new("core.v1.Service", &[
    (1, "metadata", value(msg(&OBJECT_META))),
    (2, "spec", value(msg(&SERVICE_SPEC))),
    (3, "status", value(msg(&SERVICE_STATUS))),
]);

pub(super) static ENDPOINTS: Message = Message::new("core.v1.Endpoints", &[
    (1, "metadata", value(msg(&OBJECT_META))),
    (2, "subsets", list(msg(&ENDPOINT_SUBSET))),
]);

pub(super) static ENDPOINT_SUBSET: Message = Message::new("core.v1.EndpointSubset", &[
    (1, "addresses", list(msg(&ENDPOINT_ADDRESS))),
    (2, "notReadyAddresses", list(msg(&ENDPOINT_ADDRESS))),
    (3, "ports", list(msg(&ENDPOINT_PORT))),
]);

pub(super) static ENDPOINT_ADDRESS: Message = Message::new("core.v1.EndpointAddress", &[
    (1, "ip", always(STRING)),
    (3, "hostname", value(STRING)),
    (4, "nodeName", ptr(STRING)),
    (2, "targetRef", ptr(msg(&OBJECT_REFERENCE))),
]);

pub(super) static ENDPOINT_PORT: Message = Message::new("core.v1.EndpointPort", &[
    (1, "name", value(STRING)),
    (2, "port", always(INT32)),
    (3, "protocol", value(STRING)),
    (4, "appProtocol", ptr(STRING)),
]);

pub(super) static NODE_SPEC: Message = Message::new("core.v1.NodeSpec", &[
    (1, "podCIDR", value(STRING)),
    (7, "podCIDRs", list(STRING)),
    (3, "providerID", value(STRING)),
    (4, "unschedulable", value(BOOL)),
    (5, "taints", list(msg(&TAINT))),
    (6, "configSource", ptr(msg(&NODE_CONFIG_SOURCE))),
    (2, "externalID", value(STRING)),
]);

pub(super) static NODE_CONFIG_SOURCE: Message = Message::new("core.v1.NodeConfigSource", &[
    (2, "configMap", ptr(msg(&CONFIG_MAP_NODE_CONFIG_SOURCE))),
]);

pub(super) static CONFIG_MAP_NODE_CONFIG_SOURCE: Message =
    Message::new("core.v1.ConfigMapNodeConfigSource", &[
        (1, "namespace", always(STRING)),
        (2, "name", always(STRING)),
        (3, "uid", value(STRING)),
        (4, "resourceVersion", value(STRING)),
        (5, "kubeletConfigKey", always(STRING)),
    ]);

pub(super) static DAEMON_ENDPOINT: Message = Message::new("core.v1.DaemonEndpoint", &[
    (1, "Port", always(INT32)),
]);

pub(super) static NODE_DAEMON_ENDPOINTS: Message = Message::new("core.v1.NodeDaemonEndpoints", &[
    (1, "kubeletEndpoint", value(msg(&DAEMON_ENDPOINT))),
]);

pub(super) static NODE_SYSTEM_INFO: Message = Message::new("core.v1.NodeSystemInfo", &[
    (1, "machineID", always(STRING)),
    (2, "systemUUID", always(STRING)),
    (3, "bootID", always(STRING)),
    (4, "kernelVersion", always(STRING)),
    (5, "osImage", always(STRING)),
    (6, "containerRuntimeVersion", always(STRING)),
    (7, "kubeletVersion", always(STRING)),
    (8, "kubeProxyVersion", always(STRING)),
    (9, "operatingSystem", always(STRING)),
    (10, "architecture", always(STRING)),
    (11, "swap", ptr(msg(&NODE_SWAP_STATUS))),
]);

pub(super) static NODE_CONFIG_STATUS: Message = Message::new("core.v1.NodeConfigStatus", &[
    (1, "assigned", ptr(msg(&NODE_CONFIG_SOURCE))),
    (2, "active", ptr(msg(&NODE_CONFIG_SOURCE))),
    (3, "lastKnownGood", ptr(msg(&NODE_CONFIG_SOURCE))),
    (4, "error", value(STRING)),
]);

pub(super) static NODE_STATUS: Message = Message::new("core.v1.NodeStatus", &[
    (1, "capacity", map(QUANTITY)),
    (2, "allocatable", map(QUANTITY)),
    (3, "phase", value(STRING)),
    (4, "conditions", list(msg(&NODE_CONDITION))),
    (5, "addresses", list(msg(&NODE_ADDRESS))),
    (6, "daemonEndpoints", value(msg(&NODE_DAEMON_ENDPOINTS))),
    (7, "nodeInfo", value(msg(&NODE_SYSTEM_INFO))),
    (8, "images", list(msg(&CONTAINER_IMAGE))),
    (9, "volumesInUse", list(STRING)),
    (10, "volumesAttached", list(msg(&ATTACHED_VOLUME))),
    (11, "config", ptr(msg(&NODE_CONFIG_STATUS))),
    (12, "runtimeHandlers", list(msg(&NODE_RUNTIME_HANDLER))),
    (13, "features", ptr(msg(&NODE_FEATURES))),
]);

pub(super) static ATTACHED_VOLUME: Message = Message::new("core.v1.AttachedVolume", &[
    (1, "name", always(STRING)),
    (2, "devicePath", always(STRING)),
]);

pub(super) static CONTAINER_IMAGE: Message = Message::new("core.v1.ContainerImage", &[
    (1, "names", list_or_null(STRING)),
    (2, "sizeBytes", value(INT64)),
]);

pub(super) static NODE_CONDITION: Message = Message::new("core.v1.NodeCondition", &[
    (1, "type", always(STRING)),
    (2, "status", always(STRING)),
    (3, "lastHeartbeatTime", value(TIME)),
    (4, "lastTransitionTime", value(TIME)),
    (5, "reason", value(STRING)),
    (6, "message", value(STRING)),
]);

pub(super) static NODE_ADDRESS: Message = Message::new("core.v1.NodeAddress", &[
    (1, "type", always(STRING)),
    (2, "address", always(STRING)),
]);

pub(super) static NODE: Message = Message::new("core.v1.Node", &[
    (1, "metadata", value(msg(&OBJECT_META))),
    (2, "spec", value(msg(&NODE_SPEC))),
    (3, "status", value(msg(&NODE_STATUS))),
]);

pub(super) static NAMESPACE_SPEC: Message = Message::new("core.v1.NamespaceSpec", &[
    (1, "finalizers", list(STRING)),
]);

pub(super) static NAMESPACE_STATUS: Message = Message::new("core.v1.NamespaceStatus", &[
    (1, "phase", value(STRING)),
    (2, "conditions", list(msg(&NAMESPACE_CONDITION))),
]);

pub(super) static NAMESPACE_CONDITION: Message = Message::new("core.v1.NamespaceCondition", &[
    (1, "type", always(STRING)),
    (2, "status", always(STRING)),
    (4, "lastTransitionTime", value(TIME)),
    (5, "reason", value(STRING)),
    (6, "message", value(STRING)),
]);

pub(super) static NAMESPACE: Message = Message::new("core.v1.Namespace", &[
    (1, "metadata", value(msg(&OBJECT_META))),
    (2, "spec", value(msg(&NAMESPACE_SPEC))),
    (3, "status", value(msg(&NAMESPACE_STATUS))),
]);

pub(super) static OBJECT_REFERENCE: Message = Message::new("core.v1.ObjectReference", &[
    (1, "kind", value(STRING)),
    (2, "namespace", value(STRING)),
    (3, "name", value(STRING)),
    (4, "uid", value(STRING)),
    (5, "apiVersion", value(STRING)),
    (6, "resourceVersion", value(STRING)),
    (7, "fieldPath", value(STRING)),
]);

pub(super) static LOCAL_OBJECT_REFERENCE: Message = Message::new("core.v1.LocalObjectReference", &[
    (1, "name", value(STRING)),
]);

pub(super) static TYPED_LOCAL_OBJECT_REFERENCE: Message =
    Message::new("core.v1.TypedLocalObjectReference", &[
        (1, "apiGroup", ptr_or_null(STRING)),
        (2, "kind", always(STRING)),
        (3, "name", always(STRING)),
    ]);

pub(super) static EVENT_SOURCE: Message = Message::new("core.v1.EventSource", &[
    (1, "component", value(STRING)),
    (2, "host", value(STRING)),
]);

pub(super) static EVENT: Message = Message::new("core.v1.Event", &[
    (1, "metadata", value(msg(&OBJECT_META))),
    (2, "involvedObject", value(msg(&OBJECT_REFERENCE))),
    (3, "reason", value(STRING)),
    (4, "message", value(STRING)),
    (5, "source", value(msg(&EVENT_SOURCE))),
    (6, "firstTimestamp", value(TIME)),
    (7, "lastTimestamp", value(TIME)),
    (8, "count", value(INT32)),
    (9, "type", value(STRING)),
    (10, "eventTime", value(MICRO_TIME)),
    (11, "series", ptr(msg(&EVENT_SERIES))),
    (12, "action", value(STRING)),
    (13, "related", ptr(msg(&OBJECT_REFERENCE))),
    (14, "reportingComponent", always(STRING)),
    (15, "reportingInstance", always(STRING)),
]);

pub(super) static EVENT_SERIES: Message = Message::new("core.v1.EventSeries", &[
    (1, "count", value(INT32)),
    (2, "lastObservedTime", value(MICRO_TIME)),
]);

pub(super) static SECRET: Message = Message::new("core.v1.Secret", &[
    (1, "metadata", value(msg(&OBJECT_META))),
    (5, "immutable", ptr(BOOL)),
    (2, "data", map(BYTES)),
    (4, "stringData", map(STRING)),
    (3, "type", value(STRING)),
]);

pub(super) static CONFIG_MAP: Message = Message::new("core.v1.ConfigMap", &[
    (1, "metadata", value(msg(&OBJECT_META))),
    (4, "immutable", ptr(BOOL)),
    (2, "data", map(STRING)),
    (3, "binaryData", map(BYTES)),
]);

pub(super) static DOWNWARD_API_VOLUME_SOURCE: Message = Message::new("core.v1.DownwardAPIVolumeSource", &[
    (1, "items", list(msg(&DOWNWARD_API_VOLUME_FILE))),
    (2, "defaultMode", ptr(INT32)),
]);

pub(super) static DOWNWARD_API_VOLUME_FILE: Message = Message::new("core.v1.DownwardAPIVolumeFile", &[
    (1, "path", always(STRING)),
    (2, "fieldRef", ptr(msg(&OBJECT_FIELD_SELECTOR))),
    (3, "resourceFieldRef", ptr(msg(&RESOURCE_FIELD_SELECTOR))),
    (4, "mode", ptr(INT32)),
]);

pub(super) static DOWNWARD_API_PROJECTION: Message = Message::new("core.v1.DownwardAPIProjection", &[
    (1, "items", list(msg(&DOWNWARD_API_VOLUME_FILE))),
]);

pub(super) static SECURITY_CONTEXT: Message = Message::new("core.v1.SecurityContext", &[
    (1, "capabilities", ptr(msg(&CAPABILITIES))),
    (2, "privileged", ptr(BOOL)),
    (3, "seLinuxOptions", ptr(msg(&SE_LINUX_OPTIONS))),
    (10, "windowsOptions", ptr(msg(&WINDOWS_SECURITY_CONTEXT_OPTIONS))),
    (4, "runAsUser", ptr(INT64)),
    (8, "runAsGroup", ptr(INT64)),
    (5, "runAsNonRoot", ptr(BOOL)),
    (6, "readOnlyRootFilesystem", ptr(BOOL)),
    (7, "allowPrivilegeEscalation", ptr(BOOL)),
    (9, "procMount", ptr(STRING)),
    (11, "seccompProfile", ptr(msg(&SECCOMP_PROFILE))),
    (12, "appArmorProfile", ptr(msg(&APP_ARMOR_PROFILE))),
]);

pub(super) static SE_LINUX_OPTIONS: Message = Message::new("core.v1.SELinuxOptions", &[
    (1, "user", value(STRING)),
    (2, "role", value(STRING)),
    (3, "type", value(STRING)),
    (4, "level", value(STRING)),
]);

pub(super) static WINDOWS_SECURITY_CONTEXT_OPTIONS: Message =
    Message::new("core.v1.WindowsSecurityContextOptions", &[
        (1, "gmsaCredentialSpecName", ptr(STRING)),
        (2, "gmsaCredentialSpec", ptr(STRING)),
        (3, "runAsUserName", ptr(STRING)),
        (4, "hostProcess", ptr(BOOL)),
    ]);

pub(super) static SYSCTL: Message = Message::new("core.v1.Sysctl", &[
    (1, "name", always(STRING)),
    (2, "value", always(STRING)),
]);

pub(super) static PORT_STATUS: Message = Message::new("core.v1.PortStatus", &[
    (1, "port", always(INT32)),
    (2, "protocol", always(STRING)),
    (3, "error", ptr(STRING)),
]);

// Types added after Kubernetes 1.30.

pub(super) static IMAGE_VOLUME_SOURCE: Message = Message::new("core.v1.ImageVolumeSource", &[
    (1, "reference", value(STRING)),
    (2, "pullPolicy", value(STRING)),
]);

pub(super) static VOLUME_MOUNT_STATUS: Message = Message::new("core.v1.VolumeMountStatus", &[
    (1, "name", always(STRING)),
    (2, "mountPath", always(STRING)),
    (3, "readOnly", value(BOOL)),
    (4, "recursiveReadOnly", ptr(STRING)),
]);

pub(super) static CONTAINER_USER: Message = Message::new("core.v1.ContainerUser", &[
    (1, "linux", ptr(msg(&LINUX_CONTAINER_USER))),
]);

pub(super) static LINUX_CONTAINER_USER: Message = Message::new("core.v1.LinuxContainerUser", &[
    (1, "uid", always(INT64)),
    (2, "gid", always(INT64)),
    (3, "supplementalGroups", list(INT64)),
]);

pub(super) static RESOURCE_STATUS: Message = Message::new("core.v1.ResourceStatus", &[
    (1, "name", always(STRING)),
    (2, "resources", list(msg(&RESOURCE_HEALTH))),
]);

pub(super) static RESOURCE_HEALTH: Message = Message::new("core.v1.ResourceHealth", &[
    (1, "resourceID", always(STRING)),
    (2, "health", value(STRING)),
]);

pub(super) static NODE_RUNTIME_HANDLER: Message = Message::new("core.v1.NodeRuntimeHandler", &[
    (1, "name", always(STRING)),
    (2, "features", ptr(msg(&NODE_RUNTIME_HANDLER_FEATURES))),
]);

pub(super) static NODE_RUNTIME_HANDLER_FEATURES: Message =
    Message::new("core.v1.NodeRuntimeHandlerFeatures", &[
        (1, "recursiveReadOnlyMounts", ptr(BOOL)),
        (2, "userNamespaces", ptr(BOOL)),
    ]);

pub(super) static NODE_FEATURES: Message = Message::new("core.v1.NodeFeatures", &[
    (1, "supplementalGroupsPolicy", ptr(BOOL)),
]);

pub(super) static NODE_SWAP_STATUS: Message = Message::new("core.v1.NodeSwapStatus", &[
    (1, "capacity", ptr(INT64)),
]);
