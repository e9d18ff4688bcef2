package kube

// podStages are kwok's Pod lifecycle for aima's tests, after kwok's "fast"
// stages: a Pod bound to a fake node becomes Running and Ready at once
// (with the kubelet's Started event), a Pod whose image is ImageUnpullable
// waits in ErrImagePull with a registry's message and the kubelet's Failed
// event instead, and a Pod being deleted goes at once. A Pod's later end
// (OOMKilled, evicted) is written by the test itself, as the kubelet
// would, or asked of kwok with the annotations AnnotationExitCode (the
// engine's container terminates) and AnnotationEvict (the node evicts the
// Pod) on a running Pod. A running Pod given an activeDeadlineSeconds
// (aima's stop) ends as the kubelet ends it: Failed, DeadlineExceeded.
const podStages = `---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: aima-pod-ready
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Pending']
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'NotIn'
      values: ['True']
    - key: '.spec.containers.[0].image'
      operator: 'NotIn'
      values: ['` + ImageUnpullable + `']
  next:
    event:
      type: Normal
      reason: Started
      message: Started container engine
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Ready
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: ContainersReady
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: true
        restartCount: 0
        started: true
        state:
          running:
            startedAt: {{ $now | Quote }}
      {{ end }}
      hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
      podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
      phase: Running
      startTime: {{ $now | Quote }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: aima-pod-image-pull-error
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Pending']
    - key: '.spec.containers.[0].image'
      operator: 'In'
      values: ['` + ImageUnpullable + `']
    - key: '.status.containerStatuses.[0].state.waiting.reason'
      operator: 'NotIn'
      values: ['ErrImagePull']
  next:
    event:
      type: Warning
      reason: Failed
      message: 'Failed to pull image "` + ImageUnpullable + `": not found'
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        type: Ready
        reason: ContainersNotReady
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          waiting:
            reason: ErrImagePull
            message: 'failed to pull and unpack image "{{ .image }}": failed to resolve reference "{{ .image }}": not found'
      {{ end }}
      hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
      phase: Pending
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: aima-pod-terminated
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Running']
    - key: '.metadata.annotations["` + AnnotationExitCode + `"]'
      operator: 'Exists'
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $annotations := or .metadata.annotations dict }}
      {{ $code := index $annotations "` + AnnotationExitCode + `" }}
      {{ $reason := or ( index $annotations "` + AnnotationExitReason + `" ) "Error" }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        type: Ready
        reason: PodFailed
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        type: ContainersReady
        reason: PodFailed
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: {{ $code }}
            reason: {{ $reason | Quote }}
            startedAt: {{ $now | Quote }}
            finishedAt: {{ $now | Quote }}
      {{ end }}
      phase: Failed
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: aima-pod-evicted
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Running']
    - key: '.metadata.annotations["` + AnnotationEvict + `"]'
      operator: 'Exists'
  next:
    event:
      type: Warning
      reason: Evicted
      message: '{{ index .metadata.annotations "` + AnnotationEvict + `" }}'
    statusTemplate: |
      {{ $now := Now }}
      {{ $msg := index .metadata.annotations "` + AnnotationEvict + `" }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: DisruptionTarget
        reason: TerminationByKubelet
        message: {{ $msg | Quote }}
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        type: Ready
        reason: PodFailed
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: 137
            reason: ContainerStatusUnknown
            message: The container could not be located when the pod was terminated
            startedAt: {{ $now | Quote }}
            finishedAt: {{ $now | Quote }}
      {{ end }}
      phase: Failed
      reason: Evicted
      message: {{ $msg | Quote }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: aima-pod-deadline
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Running']
    - key: '.spec.activeDeadlineSeconds'
      operator: 'Exists'
  next:
    event:
      type: Normal
      reason: DeadlineExceeded
      message: Pod was active on the node longer than the specified deadline
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        type: Ready
        reason: PodFailed
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        type: ContainersReady
        reason: PodFailed
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: 0
            reason: Completed
            startedAt: {{ $now | Quote }}
            finishedAt: {{ $now | Quote }}
      {{ end }}
      phase: Failed
      reason: DeadlineExceeded
      message: Pod was active on the node longer than the specified deadline
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: aima-pod-delete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'Exists'
  next:
    delete: true
`

// Annotations a test puts on a running Pod to have kwok end it as a
// kubelet would.
const (
	// AnnotationExitCode terminates the engine's container with this exit
	// code (and AnnotationExitReason's reason, default Error, e.g.
	// OOMKilled); the Pod fails.
	AnnotationExitCode   = "test.aima/exit-code"
	AnnotationExitReason = "test.aima/exit-reason"
	// AnnotationEvict evicts the Pod with this message, as the kubelet
	// does under node pressure (phase Failed, reason Evicted).
	AnnotationEvict = "test.aima/evict"
)
