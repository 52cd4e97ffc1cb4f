# Docker's default seccomp profile for x86_64 and aarch64, written for gcr (from the behaviour of
# moby's profiles/seccomp/default.json; not a copy of it). Compiled to classic BPF by
# build.rs (see src/seccomp/compile.rs for the grammar):
#
#   default errno <N>                  action for syscalls not listed
#   [all] | [cap NAME] | [nocap NAME]  the rules below apply always / only with / only
#                                      without capability NAME in the container's set
#   allow NAME... [if COND [and COND]...]
#   errno N NAME... [if ...]
#   COND:  argI == V   argI != V   argI & MASK == V   (64-bit compares, V in dec or 0x hex)
#
# Names are looked up in syscalls.txt; a name the target architecture lacks (open, fork,
# arch_prctl on aarch64) is skipped there. Other architectures (i386 or x32 on x86_64, arm32
# on aarch64) are killed; syscall numbers above the table get ENOSYS
# (as runc does) so libc can fall back from syscalls newer than this profile.

default errno 1

[all]
allow accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown
allow clock_adjtime clock_getres clock_gettime clock_nanosleep close close_range connect
allow copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old
allow epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit
allow exit_group faccessat faccessat2 fadvise64 fallocate fanotify_mark fchdir fchmod fchmodat
allow fchmodat2 fchown fchownat fcntl fdatasync fgetxattr flistxattr flock fork fremovexattr
allow fsetxattr fstat fstatfs fsync ftruncate futex futex_requeue futex_wait futex_waitv
allow futex_wake futimesat getcpu getcwd getdents getdents64 getegid geteuid getgid getgroups
allow getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid
allow getresuid getrlimit get_robust_list getrusage getsid getsockname getsockopt
allow get_thread_area gettid gettimeofday getuid getxattr inotify_add_watch inotify_init
allow inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents
allow ioprio_get ioprio_set io_setup io_submit kill landlock_add_rule landlock_create_ruleset
allow landlock_restrict_self lchown lgetxattr link linkat listen listxattr llistxattr
allow lremovexattr lseek lsetxattr lstat madvise map_shadow_stack membarrier memfd_create
allow memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mprotect
allow mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedsend mq_unlink mremap msgctl
allow msgget msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep
allow newfstatat open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc
allow pkey_free pkey_mprotect poll ppoll prctl pread64 preadv preadv2 prlimit64
allow process_mrelease pselect6 pwrite64 pwritev pwritev2 read readahead readlink readlinkat
allow readv recvfrom recvmmsg recvmsg remap_file_pages removexattr rename renameat renameat2
allow restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo
allow rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_tgsigqueueinfo sched_getaffinity
allow sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min
allow sched_getscheduler sched_rr_get_interval sched_setaffinity sched_setattr sched_setparam
allow sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop sendfile
allow sendmmsg sendmsg sendto setfsgid setfsuid setgid setgroups setitimer setpgid
allow setpriority setregid setresgid setresuid setreuid setrlimit set_robust_list setsid
allow setsockopt set_thread_area set_tid_address setuid setxattr shmat shmctl shmdt shmget
allow shutdown sigaltstack signalfd signalfd4 socketpair splice stat statfs statx symlink
allow symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete
allow timer_getoverrun timer_gettime timer_settime timerfd_create timerfd_gettime
allow timerfd_settime times tkill truncate umask uname unlink unlinkat utime utimensat utimes
allow vfork vmsplice wait4 waitid write writev
# x86 specific
allow arch_prctl modify_ldt
# Docker allows these on kernels >= 4.8 (where ptrace can no longer bypass seccomp).
allow ptrace process_vm_readv process_vm_writev
# personality: only PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32 and the query.
allow personality if arg0 == 0x0
allow personality if arg0 == 0x8
allow personality if arg0 == 0x20000
allow personality if arg0 == 0x20008
allow personality if arg0 == 0xffffffff
# socket: every family except AF_VSOCK (40).
allow socket if arg0 != 40

[cap SYS_ADMIN]
allow bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount
allow mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname
allow sethostname setns syslog umount2 unshare

[nocap SYS_ADMIN]
# clone without any namespace flag (CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET).
allow clone if arg0 & 0x7e020000 == 0
# clone3 cannot be inspected (flags are behind a pointer): ENOSYS makes libc fall back to clone.
errno 38 clone3

[cap SYS_BOOT]
allow reboot

[cap SYS_CHROOT]
allow chroot

[cap SYS_MODULE]
allow delete_module init_module finit_module

[cap SYS_PACCT]
allow acct

[cap SYS_PTRACE]
allow kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace

[cap SYS_RAWIO]
allow iopl ioperm

[cap SYS_TIME]
allow settimeofday clock_settime

[cap SYS_TTY_CONFIG]
allow vhangup

[cap SYS_NICE]
allow get_mempolicy mbind set_mempolicy set_mempolicy_home_node

[cap SYSLOG]
allow syslog

[cap BPF]
allow bpf

[cap PERFMON]
allow perf_event_open

[cap DAC_READ_SEARCH]
allow open_by_handle_at
