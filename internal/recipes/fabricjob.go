package recipes

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"sigs.k8s.io/yaml"
)

// FabricJobOptions shape the NCCL all-reduce job.
type FabricJobOptions struct {
	// Nodes is the number of GPU nodes (default: the recipe's minNodes,
	// else 2).
	Nodes     int
	Namespace string
	// Image and TestPath override the fabric's default nccl-tests image
	// and the all_reduce_perf path in it.
	Image, TestPath string
}

// fabricSpec is what a worker needs to use a fabric.
type fabricSpec struct {
	image, testPath string
	// resources per worker beyond the GPUs; efa by accelerator.
	resources   map[string]string
	env         map[string]string
	capAdd      []string
	annotations map[string]string
	hostPaths   map[string]string // host path -> container path
	note        string
}

// efaInterfaces is the EFA count of each accelerator's instance type.
var efaInterfaces = map[string]string{"h100": "32", "h200": "32", "a100": "4", "gb200": "4"}

func fabricSpecFor(fabric, accelerator string) (fabricSpec, error) {
	switch fabric {
	case "efa":
		efa := efaInterfaces[accelerator]
		if efa == "" {
			efa = "32"
		}
		return fabricSpec{
			image:     "public.ecr.aws/hpc-cloud/nccl-tests:latest",
			testPath:  "/opt/nccl-tests/build/all_reduce_perf",
			resources: map[string]string{"vpc.amazonaws.com/efa": efa},
			env:       map[string]string{"FI_PROVIDER": "efa", "FI_EFA_USE_DEVICE_RDMA": "1", "NCCL_DEBUG": "INFO"},
			note:      "AWS's nccl-tests image (EFA installer, aws-ofi-nccl); pin a tag or digest for repeatable runs.",
		}, nil
	case "infiniband", "roce":
		env := map[string]string{"NCCL_IB_HCA": "mlx5", "NCCL_DEBUG": "INFO", "NCCL_NET_GDR_LEVEL": "PHB"}
		if fabric == "roce" {
			env["NCCL_IB_GID_INDEX"] = "3" // RoCE v2
		}
		return fabricSpec{
			image:     "",
			testPath:  "/opt/nccl-tests/build/all_reduce_perf",
			resources: map[string]string{"rdma/rdma_shared_device_a": "1"},
			env:       env,
			capAdd:    []string{"IPC_LOCK"},
			note:      "Needs the Network Operator's RDMA shared device plugin (resource rdma/rdma_shared_device_a) from the site's NicClusterPolicy.",
		}, nil
	case "tcpxo":
		return fabricSpec{
			image:    "us-docker.pkg.dev/gce-ai-infra/gpudirect-tcpxo/nccl-plugin-gpudirecttcpx-dev:v1.0.15",
			testPath: "/third_party/nccl-tests/build/all_reduce_perf",
			env: map[string]string{
				"LD_LIBRARY_PATH": "/usr/local/nvidia/lib64", "NCCL_LIB_DIR": "/usr/local/nvidia/lib64",
				"NCCL_FASTRAK_CTRL_DEV": "eth0", "NCCL_FASTRAK_IFNAME": "eth1,eth2,eth3,eth4,eth5,eth6,eth7,eth8",
				"NCCL_SOCKET_IFNAME": "eth0", "NCCL_DEBUG": "INFO",
			},
			annotations: map[string]string{
				"networking.gke.io/default-interface": "eth0",
				"networking.gke.io/interfaces": `[{"interfaceName":"eth0","network":"default"},` +
					`{"interfaceName":"eth1","network":"vpc1"},{"interfaceName":"eth2","network":"vpc2"},` +
					`{"interfaceName":"eth3","network":"vpc3"},{"interfaceName":"eth4","network":"vpc4"},` +
					`{"interfaceName":"eth5","network":"vpc5"},{"interfaceName":"eth6","network":"vpc6"},` +
					`{"interfaceName":"eth7","network":"vpc7"},{"interfaceName":"eth8","network":"vpc8"}]`,
			},
			hostPaths: map[string]string{"/home/kubernetes/bin/nvidia/lib64": "/usr/local/nvidia/lib64"},
			note:      "GKE a3-megagpu-8g: the vpc1..vpc8 GKE Networks must exist, and Google's tcpxo-daemon sidecar (its A3 Mega guide) runs beside each worker.",
		}, nil
	}
	return fabricSpec{}, fmt.Errorf("no NCCL job for fabric %q", fabric)
}

// gpusPerNode reads the recipe's GPU.smi.gpu-count constraint (">= 8").
func gpusPerNode(r *Recipe) int {
	if c, ok := r.Constraints["GPU.smi.gpu-count"]; ok {
		if e, err := ParseExpr(c.Value, c.Type); err == nil && (e.Op == OpGE || e.Op == OpEQ) {
			if n, err := strconv.Atoi(e.Values[0]); err == nil && n > 0 {
				return n
			}
		}
	}
	return 8
}

// FabricJob renders the NCCL all-reduce test for a training recipe as a
// Kubeflow MPIJob (kubeflow.org/v2beta1, the MPI Operator): one launcher
// running mpirun over the workers, one worker per GPU node with all its
// GPUs and the recipe's fabric, its output in the launcher's log for
// `nvbind recipe validate --phase performance --nccl-log`.
func FabricJob(r *Recipe, opts FabricJobOptions) ([]byte, error) {
	if r.Fabric == "" {
		return nil, fmt.Errorf("recipe %s sets up no inter-node fabric (a training recipe does); nothing for an NCCL job to cross", r.Name)
	}
	spec, err := fabricSpecFor(r.Fabric, r.Criteria.Accelerator)
	if err != nil {
		return nil, err
	}
	if opts.Image != "" {
		spec.image = opts.Image
	}
	if spec.image == "" {
		return nil, fmt.Errorf("no default nccl-tests image for fabric %s: pass --image (MPI, NCCL and nccl-tests built with MPI=1)", r.Fabric)
	}
	if opts.TestPath != "" {
		spec.testPath = opts.TestPath
	}
	nodes := opts.Nodes
	if nodes == 0 {
		nodes = 2
		if r.Performance != nil && r.Performance.MinNodes > 0 {
			nodes = r.Performance.MinNodes
		}
	}
	if nodes < 2 {
		return nil, fmt.Errorf("--nodes %d: the fabric is only crossed between two or more nodes", nodes)
	}
	ns := opts.Namespace
	if ns == "" {
		ns = "default"
	}
	maxBytes := "16G"
	if r.Performance != nil {
		maxBytes = r.Performance.MessageSize
	}
	gpus := gpusPerNode(r)
	name := "nccl-all-reduce-" + r.Fabric

	var envList []any
	mpirun := []string{"mpirun", "--allow-run-as-root", "-np", strconv.Itoa(nodes * gpus), "-N", strconv.Itoa(gpus),
		"--bind-to", "none", "--mca", "pml", "^ucx", "--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_exclude", "lo,docker0"}
	for _, k := range slices.Sorted(maps.Keys(spec.env)) {
		envList = append(envList, map[string]any{"name": k, "value": spec.env[k]})
		mpirun = append(mpirun, "-x", k)
	}
	mpirun = append(mpirun, spec.testPath, "-b", "8", "-e", maxBytes, "-f", "2", "-g", "1", "-c", "1", "-n", "20")

	limits := map[string]any{"nvidia.com/gpu": strconv.Itoa(gpus)}
	for k, v := range spec.resources {
		limits[k] = v
	}
	worker := map[string]any{
		"name":         "worker",
		"image":        spec.image,
		"command":      []any{"/usr/sbin/sshd", "-De"},
		"env":          envList,
		"resources":    map[string]any{"limits": limits, "requests": limits},
		"volumeMounts": []any{map[string]any{"name": "dshm", "mountPath": "/dev/shm"}},
	}
	if len(spec.capAdd) > 0 {
		worker["securityContext"] = map[string]any{"capabilities": map[string]any{"add": toAny(spec.capAdd)}}
	}
	volumes := []any{map[string]any{"name": "dshm", "emptyDir": map[string]any{"medium": "Memory"}}}
	for i, hp := range slices.Sorted(maps.Keys(spec.hostPaths)) {
		vname := "host-lib-" + strconv.Itoa(i)
		volumes = append(volumes, map[string]any{"name": vname, "hostPath": map[string]any{"path": hp}})
		worker["volumeMounts"] = append(worker["volumeMounts"].([]any), map[string]any{"name": vname, "mountPath": spec.hostPaths[hp]})
	}
	workerPod := map[string]any{
		"runtimeClassName": "nvbind",
		"tolerations":      []any{map[string]any{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}},
		"nodeSelector":     map[string]any{"nvidia.com/gpu.present": "true"},
		// One worker per node: the test must cross the fabric.
		"affinity": map[string]any{"podAntiAffinity": map[string]any{"requiredDuringSchedulingIgnoredDuringExecution": []any{
			map[string]any{"topologyKey": "kubernetes.io/hostname", "labelSelector": map[string]any{"matchLabels": map[string]any{"training.kubeflow.org/job-name": name}}},
		}}},
		"containers": []any{worker},
		"volumes":    volumes,
	}
	workerMeta := map[string]any{"labels": map[string]any{"app.kubernetes.io/part-of": "nvbind-fabric-test"}}
	if len(spec.annotations) > 0 {
		ann := map[string]any{}
		for k, v := range spec.annotations {
			ann[k] = v
		}
		workerMeta["annotations"] = ann
	}
	job := map[string]any{
		"apiVersion": "kubeflow.org/v2beta1",
		"kind":       "MPIJob",
		"metadata": map[string]any{
			"name": name, "namespace": ns,
			"labels": map[string]any{"app.kubernetes.io/part-of": "nvbind-fabric-test", "nvbind.io/recipe": r.Name},
		},
		"spec": map[string]any{
			"slotsPerWorker": gpus,
			"runPolicy":      map[string]any{"cleanPodPolicy": "Running", "backoffLimit": 0},
			"mpiReplicaSpecs": map[string]any{
				"Launcher": map[string]any{
					"replicas": 1,
					"template": map[string]any{"spec": map[string]any{
						"restartPolicy": "Never",
						"containers": []any{map[string]any{
							"name": "launcher", "image": spec.image, "command": toAny(mpirun), "env": envList,
						}},
					}},
				},
				"Worker": map[string]any{
					"replicas": nodes,
					"template": map[string]any{"metadata": workerMeta, "spec": workerPod},
				},
			},
		},
	}
	body, err := yaml.Marshal(job)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# NCCL all-reduce across %d nodes x %d GPUs over %s, for recipe %s; generated by nvbind recipe fabric-job.\n", nodes, gpus, r.Fabric, r.Name)
	b.WriteString("# Needs the Kubeflow MPI Operator (kubeflow.org/v2beta1 MPIJob). Run, then check:\n")
	fmt.Fprintf(&b, "#   kubectl apply -f job.yaml && kubectl -n %s wait mpijob/%s --for=condition=Succeeded --timeout=30m\n", ns, name)
	fmt.Fprintf(&b, "#   kubectl -n %s logs job/%s-launcher > nccl.log\n", ns, name)
	b.WriteString("#   nvbind recipe validate --phase performance --recipe recipe.yaml --nccl-log nccl.log\n")
	if r.Performance != nil {
		fmt.Fprintf(&b, "# Bar: out-of-place busbw at %s >= %s GB/s less %s%% (%s)\n", r.Performance.MessageSize,
			fmtFloat(r.Performance.MinBusBandwidth), fmtFloat(r.Performance.TolerancePercent), r.Performance.Basis)
	}
	b.WriteString("# " + spec.note + "\n")
	b.Write(body)
	return b.Bytes(), nil
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
