//! The table of reason rules: stable phrases in ECS stop reasons mapped to a category, a title
//! and remediation. Data only; [`super::classify`] decides where the table is consulted.
//!
//! A rule matches a reason text when, for one of its `when` alternatives, every phrase occurs in
//! the text (ASCII case-insensitive). Rules are tried in order, so specific rules come before the
//! general ones they refine. Every rule carries a real-world `example`; a test checks that each
//! example is classified by its own rule, so no rule is dead or shadowed.

use super::Category;

/// One entry of the table.
#[derive(Debug)]
pub struct Rule {
    /// Stable identifier, reported in the diagnosis.
    pub id: &'static str,
    pub category: Category,
    /// Alternatives; each is a list of phrases that must all occur (lower case).
    pub when: &'static [&'static [&'static str]],
    pub title: &'static str,
    pub remediation: &'static [&'static str],
    /// A reason text this rule exists for.
    pub example: &'static str,
}

impl Rule {
    /// Whether the rule matches `lowercase_reason` (the caller lower-cases once).
    pub fn matches(&self, lowercase_reason: &str) -> bool {
        self.when.iter().any(|phrases| {
            phrases
                .iter()
                .all(|phrase| lowercase_reason.contains(phrase))
        })
    }
}

/// The rules, most specific first.
pub static REASON_RULES: &[Rule] = &[
    // ── memory ─────────────────────────────────────────────────────────────────────────────
    Rule {
        id: "oom-killed",
        category: Category::Oom,
        when: &[&["outofmemory"], &["killed due to memory usage"], &["oom-kill"], &["oomkilled"]],
        title: "killed for exceeding its memory limit",
        remediation: &[
            "Raise the container's `memory` (hard limit) or the task size, or lower the application's heap/cache sizes to fit.",
            "Check the memory utilisation graph of the service before the kill: a steady climb points to a leak, a spike to a burst of load.",
            "For JVMs set -XX:MaxRAMPercentage (e.g. 75) so the heap respects the container limit.",
        ],
        example: "OutOfMemoryError: Container killed due to memory usage",
    },
    // ── storage (before image pull: a full disk also breaks pulls) ─────────────────────────
    Rule {
        id: "disk-full",
        category: Category::Storage,
        when: &[&["no space left on device"], &["thin pool", "space"], &["devmapper"]],
        title: "host or task storage is full",
        remediation: &[
            "On Fargate raise `ephemeralStorage.sizeInGiB`; on EC2 grow the instance volume or prune images (ECS_IMAGE_CLEANUP_INTERVAL).",
            "Make the application write temporary data to a volume sized for it, not the container layer.",
        ],
        example: "CannotPullContainerError: failed to register layer: write /usr/lib/libfoo.so: no space left on device",
    },
    Rule {
        id: "efs-mount-failed",
        category: Category::Storage,
        when: &[&["efs utils"], &["efs", "mount"], &["mount.nfs"]],
        title: "EFS volume could not be mounted",
        remediation: &[
            "Allow NFS (TCP 2049) from the task's security group to the EFS mount targets, in every subnet the task can run in.",
            "Check the file system id, access point and the task role's elasticfilesystem:Client* permissions when IAM authorisation is on.",
        ],
        example: "ResourceInitializationError: failed to invoke EFS utils commands to set up EFS volumes: stderr: mount.nfs4: Connection timed out",
    },
    Rule {
        id: "ephemeral-storage",
        category: Category::Storage,
        when: &[&["ephemeralstorage"], &["ephemeral storage"]],
        title: "ephemeral storage could not be provisioned",
        remediation: &[
            "Usually transient on Fargate: the service scheduler retries. If it repeats, lower `ephemeralStorage.sizeInGiB` or open a support case.",
        ],
        example: "Timeout waiting for EphemeralStorage provisioning to complete.",
    },
    Rule {
        id: "volume-mount-failed",
        category: Category::Storage,
        when: &[&["failed to mount"], &["volume", "mount"], &["bind source path does not exist"], &["failed to create volume"]],
        title: "a volume could not be mounted",
        remediation: &[
            "Check the task definition's `volumes` and `mountPoints`: source paths must exist on the host and volume names must match.",
        ],
        example: "CannotStartContainerError: Error response from daemon: invalid mount config for type \"bind\": bind source path does not exist: /data",
    },
    // ── secrets (before registry auth: both share the 'unable to pull secrets or registry auth' prefix) ──
    Rule {
        id: "secrets-retrieval",
        category: Category::Secrets,
        when: &[
            &["retrieve secret"],
            &["secretsmanager"],
            &["from asm"],
            &["from ssm"],
            &["ssm:getparameters"],
            &["kms:decrypt"],
            &["env file"],
            &["envfile"],
            &["environment file"],
        ],
        title: "secrets or environment files could not be retrieved",
        remediation: &[
            "Give the task *execution* role secretsmanager:GetSecretValue / ssm:GetParameters on the referenced ARNs (and kms:Decrypt for a customer-managed key); s3:GetObject for environment files.",
            "Check that each `valueFrom` ARN exists in the task's region, and that private subnets reach Secrets Manager, SSM and S3 (NAT or VPC endpoints).",
        ],
        example: "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 5 time(s): AccessDeniedException",
    },
    Rule {
        id: "ecr-auth",
        category: Category::ImagePull,
        when: &[&["ecr registry auth"], &["ecr auth"], &["getauthorizationtoken"]],
        title: "ECR authorization could not be retrieved",
        remediation: &[
            "Give the task execution role ecr:GetAuthorizationToken (AmazonECSTaskExecutionRolePolicy covers it).",
            "From private subnets, reach ECR through a NAT gateway or the ecr.api, ecr.dkr and S3 gateway VPC endpoints.",
        ],
        example: "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve ecr registry auth: service call has been retried 3 time(s): RequestError: send request failed",
    },
    Rule {
        id: "secrets-or-auth",
        category: Category::Secrets,
        when: &[&["unable to pull secrets"]],
        title: "secrets or registry auth could not be retrieved",
        remediation: &[
            "Check the task execution role's permissions for Secrets Manager, SSM and ECR, and the network path from the task's subnets to those services.",
        ],
        example: "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: context deadline exceeded",
    },
    // ── logging (before image pull: log permission errors also say AccessDenied) ──
    Rule {
        id: "log-driver",
        category: Category::LogConfig,
        when: &[
            &["logging driver"],
            &["log driver"],
            &["logger args"],
            &["log group"],
            &["log stream"],
            &["createlogstream"],
            &["createloggroup"],
        ],
        title: "log driver could not start",
        remediation: &[
            "Create the awslogs-group named in the task definition (or set awslogs-create-group=true and allow logs:CreateLogGroup).",
            "Give the task execution role logs:CreateLogStream and logs:PutLogEvents on that group, and check the awslogs options' spelling and region.",
        ],
        example: "ResourceInitializationError: failed to validate logger args: create stream has been retried 1 times: failed to create Cloudwatch log stream: ResourceNotFoundException: The specified log group does not exist.",
    },
    // ── image pull ─────────────────────────────────────────────────────────────────────────
    Rule {
        id: "image-platform-mismatch",
        category: Category::ImagePull,
        when: &[&["does not contain descriptor matching platform"], &["no matching manifest"]],
        title: "image has no variant for the task's CPU architecture",
        remediation: &[
            "Build and push the image for the task's `runtimePlatform.cpuArchitecture` (docker buildx --platform linux/amd64,linux/arm64), or change the task's architecture.",
        ],
        example: "CannotPullContainerError: image Manifest does not contain descriptor matching platform 'linux/arm64'",
    },
    Rule {
        id: "image-rate-limited",
        category: Category::ImagePull,
        when: &[&["toomanyrequests"], &["pull", "rate limit"]],
        title: "registry rate limit reached",
        remediation: &[
            "Pull public images through an ECR pull-through cache or copy them into ECR; authenticate Docker Hub pulls with repositoryCredentials.",
        ],
        example: "CannotPullContainerError: toomanyrequests: You have reached your pull rate limit.",
    },
    Rule {
        id: "image-access-denied",
        category: Category::ImagePull,
        when: &[
            &["pull", "access denied"],
            &["pull", "accessdenied"],
            &["pull", "403 forbidden"],
            &["pull", "unauthorized"],
            &["no basic auth credentials"],
        ],
        title: "access to the image was denied",
        remediation: &[
            "Allow the task execution role ecr:BatchGetImage and ecr:GetDownloadUrlForLayer on the repository; for cross-account pulls also the repository policy.",
            "For private registries outside ECR set repositoryCredentials with a Secrets Manager secret the execution role can read.",
        ],
        example: "CannotPullContainerError: pull access denied for 111122223333.dkr.ecr.us-east-1.amazonaws.com/orders-api, repository does not exist or may require 'docker login'",
    },
    Rule {
        id: "image-not-found",
        category: Category::ImagePull,
        when: &[&["pull", "not found"], &["manifest unknown"], &["pull", "does not exist"], &["name unknown"]],
        title: "image or tag not found",
        remediation: &[
            "Check that the tag in the task definition was pushed to this registry and region (aws ecr describe-images).",
            "ECR lifecycle policies can expire tags a task definition still uses: pin digests or exclude deployed tags.",
        ],
        example: "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref 111122223333.dkr.ecr.us-east-1.amazonaws.com/orders-api:1.9.0: not found",
    },
    Rule {
        id: "registry-unreachable",
        category: Category::ImagePull,
        when: &[
            &["pull", "i/o timeout"],
            &["pull", "dial tcp"],
            &["pull", "context deadline exceeded"],
            &["pull", "context canceled"],
            &["pull", "no such host"],
            &["pull", "connection refused"],
            &["pull", "request canceled"],
        ],
        title: "registry unreachable from the task's network",
        remediation: &[
            "Tasks in private subnets need a NAT gateway or VPC endpoints (ecr.api, ecr.dkr, S3 gateway) to pull from ECR; public subnets need assignPublicIp.",
            "Check security group egress on 443 and the subnet's route table and network ACLs.",
        ],
        example: "CannotPullContainerError: ref pull has been retried 5 time(s): failed to copy: httpReadSeeker: failed open: failed to do request: Get \"https://prod-us-east-1-starport-layer-bucket.s3.us-east-1.amazonaws.com/\": dial tcp 52.216.0.1:443: i/o timeout",
    },
    Rule {
        id: "image-pull-failed",
        category: Category::ImagePull,
        when: &[&["cannotpullcontainer"], &["failed to pull image"], &["pull image manifest"]],
        title: "image could not be pulled",
        remediation: &[
            "Read the registry error in the evidence; check the image reference, the execution role's ECR permissions and the network path to the registry.",
        ],
        example: "CannotPullContainerError: Error response from daemon: unexpected EOF",
    },
    // ── logging ────────────────────────────────────────────────────────────────────────────
    // ── network ────────────────────────────────────────────────────────────────────────────
    Rule {
        id: "subnet-exhausted",
        category: Category::Network,
        when: &[&["insufficientfreeaddressesinsubnet"], &["free addresses"], &["free ip"], &["not enough ip"]],
        title: "subnet has no free IP addresses",
        remediation: &[
            "Add subnets (or larger ones) to the service's awsvpcConfiguration, or free addresses held by idle ENIs.",
        ],
        example: "Unexpected EC2 error while attempting to Create Network Interface with public IP assignment disabled in subnet 'subnet-0123': InsufficientFreeAddressesInSubnet",
    },
    Rule {
        id: "eni-provisioning",
        category: Category::Network,
        when: &[
            &["network interface"],
            &["networkinterface"],
            &["eni provisioning"],
            &["eni attachment"],
            &["configure eni"],
            &["attach eni"],
            &["network namespace"],
        ],
        title: "network interface provisioning failed",
        remediation: &[
            "Usually transient: the service scheduler retries. If it repeats, check the ENI quota per region, trunking on EC2 instances, and the subnets' and security groups' existence.",
        ],
        example: "Timeout waiting for network interface provisioning to complete.",
    },
    // ── health checks ──────────────────────────────────────────────────────────────────────
    Rule {
        id: "elb-health-check",
        category: Category::HealthCheck,
        when: &[&["elb health check"], &["target group health check"], &["load balancer health check"]],
        title: "failed load balancer health checks",
        remediation: &[
            "Check the target group's health check path, port and matcher against what the container serves, and that the task's security group admits the load balancer.",
            "If the application starts slowly, raise the service's healthCheckGracePeriodSeconds.",
        ],
        example: "Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:us-east-1:111122223333:targetgroup/orders-tg/0123456789abcdef)",
    },
    Rule {
        id: "container-health-check",
        category: Category::HealthCheck,
        when: &[&["container health check"], &["health check"], &["healthcheck"]],
        title: "failed container health checks",
        remediation: &[
            "Run the task definition's healthCheck command inside the container by hand (ECS Exec); check that its tools (curl, wget) exist in the image.",
            "Raise healthCheck.startPeriod for slow starts.",
        ],
        example: "Task failed container health checks",
    },
    // ── container start ────────────────────────────────────────────────────────────────────
    Rule {
        id: "command-not-found",
        category: Category::StartFailure,
        when: &[&["executable file not found"], &["no such file or directory", "exec"]],
        title: "entrypoint or command not found in the image",
        remediation: &[
            "Check `entryPoint` and `command` in the task definition against the image (docker run --entrypoint sh IMAGE -c 'command -v …').",
        ],
        example: "CannotStartContainerError: ResourceInitializationError: failed to create new container runtime task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: \"/app/server\": stat /app/server: no such file or directory: unknown",
    },
    Rule {
        id: "exec-format-error",
        category: Category::StartFailure,
        when: &[&["exec format error"]],
        title: "image built for another CPU architecture",
        remediation: &[
            "Build the image for the task's runtimePlatform (linux/amd64 vs linux/arm64) or change the task's cpuArchitecture.",
        ],
        example: "CannotStartContainerError: Error response from daemon: failed to create shim task: OCI runtime create failed: exec format error",
    },
    Rule {
        id: "container-runtime",
        category: Category::StartFailure,
        when: &[
            &["cannotstartcontainer"],
            &["cannotcreatecontainer"],
            &["cannotinspectcontainer"],
            &["containerruntimeerror"],
            &["containerruntimetimeouterror"],
            &["dockertimeouterror"],
            &["oci runtime"],
            &["failed to create shim"],
            &["container runtime task"],
        ],
        title: "container runtime could not create or start the container",
        remediation: &[
            "Read the runtime error in the evidence; timeouts are usually transient host pressure (the scheduler retries).",
            "If it repeats on EC2, check the instance's disk, CPU credits and ECS agent / Docker versions.",
        ],
        example: "CannotStartContainerError: Error response from daemon: failed to create shim task: context deadline exceeded",
    },
    // ── Spot ───────────────────────────────────────────────────────────────────────────────
    Rule {
        id: "spot-interruption",
        category: Category::SpotInterruption,
        when: &[&["spot", "interrupt"], &["spot", "reclaim"]],
        title: "Spot capacity reclaimed",
        remediation: &[
            "Expected on FARGATE_SPOT / Spot instances: keep a FARGATE (on-demand) base in the capacity provider strategy for services that must not dip.",
            "Handle SIGTERM and finish within stopTimeout (up to 120 s) so in-flight work is not lost.",
        ],
        example: "Your Spot Task was interrupted.",
    },
    // ── infrastructure ─────────────────────────────────────────────────────────────────────
    Rule {
        id: "host-stopped",
        category: Category::Infrastructure,
        when: &[&["host ec2"], &["instance", "terminated"], &["underlying host"], &["container instance", "stopped"]],
        title: "the host instance stopped or was terminated",
        remediation: &[
            "Check the Auto Scaling group's activity history (scale-in, failed instance health checks, Spot) and use managed termination protection with capacity providers.",
        ],
        example: "Host EC2 (instance i-0123456789abcdef0) terminated.",
    },
    Rule {
        id: "deregistration",
        category: Category::Infrastructure,
        when: &[&["deregistration"], &["deregistered"], &["draining"]],
        title: "container instance deregistered or drained",
        remediation: &[
            "Tasks on a drained or deregistered instance are replaced elsewhere; check who drained it (ASG lifecycle hook, maintenance automation).",
        ],
        example: "Container instance deregistration forced by user",
    },
    Rule {
        id: "fargate-maintenance",
        category: Category::Infrastructure,
        when: &[&["maintenance"], &["retire"], &["retirement"], &["patching"]],
        title: "AWS maintenance or task retirement",
        remediation: &[
            "Fargate retires tasks on outdated platform versions; services replace them. Run at least two tasks and set a task-retirement wait time in account settings.",
        ],
        example: "ECS is performing maintenance on the underlying infrastructure hosting the task",
    },
    Rule {
        id: "agent-or-internal",
        category: Category::Infrastructure,
        when: &[&["internalerror"], &["internal error"], &["ecs agent"], &["container agent"], &["agent", "disconnect"], &["cannotstopcontainer"]],
        title: "ECS agent or AWS internal error",
        remediation: &[
            "Usually transient; the service scheduler replaces the task. If it repeats on EC2, check the ECS agent log (/var/log/ecs/ecs-agent.log) and update the agent.",
        ],
        example: "InternalError: Failed to run task due to an internal error.",
    },
    // ── normal operations ──────────────────────────────────────────────────────────────────
    Rule {
        id: "service-scaling",
        category: Category::Deployment,
        when: &[&["scaling activity initiated by"], &["rebalanc"], &["deployment", "replac"]],
        title: "replaced by a deployment or scale-in",
        remediation: &[],
        example: "Scaling activity initiated by (deployment ecs-svc/7012345678901234567)",
    },
    Rule {
        id: "stopped-by-user",
        category: Category::UserStop,
        when: &[&["stopped by user"], &["user initiated"], &["stoptask"]],
        title: "stopped by a user or API call",
        remediation: &[],
        example: "Task stopped by user",
    },
];

/// The first rule matching `reason`, if any.
pub fn match_reason(reason: &str) -> Option<&'static Rule> {
    match_reason_ranked(reason).map(|(_, rule)| rule)
}

/// The first rule matching `reason` with its position in the table (lower ranks first).
pub fn match_reason_ranked(reason: &str) -> Option<(usize, &'static Rule)> {
    let lowercase = reason.to_ascii_lowercase();
    REASON_RULES
        .iter()
        .enumerate()
        .find(|(_, rule)| rule.matches(&lowercase))
}
