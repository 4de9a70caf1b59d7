package mutate

// ControlPlane mutates K0smotronControlPlane, K0smotronControlPlaneTemplate and
// k0smotron.io Cluster objects.
func ControlPlane(in Input) (Result, error) { return Result{Target: TargetControlPlane}, nil }
