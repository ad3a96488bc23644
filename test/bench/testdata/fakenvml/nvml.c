/* A stand-in libnvidia-ml for the benchmarks: just enough of NVML for
 * NVIDIA's nvidia-ctk to generate its CDI spec (nvml mode) for the
 * simulated driver root (internal/gpu/simroot: NDEV GPUs on its bus IDs).
 * Built by test/bench at run time; never shipped. */
#include <stdio.h>
#include <string.h>

#ifndef NDEV
#define NDEV 4
#endif

typedef int nvmlReturn_t;
typedef struct { unsigned i; } device;
static device devs[16];

static const char *bus[] = {"0000:07:00.0", "0000:0F:00.0", "0000:47:00.0", "0000:4E:00.0",
                            "0000:87:00.0", "0000:90:00.0", "0000:B7:00.0", "0000:BD:00.0"};

nvmlReturn_t nvmlInit(void) { return 0; }
nvmlReturn_t nvmlInit_v2(void) { return 0; }
nvmlReturn_t nvmlInitWithFlags(unsigned f) { (void)f; return 0; }
nvmlReturn_t nvmlShutdown(void) { return 0; }
const char *nvmlErrorString(nvmlReturn_t r) { return r ? "fake NVML error" : "Success"; }
nvmlReturn_t nvmlSystemGetDriverVersion(char *v, unsigned n) { snprintf(v, n, "580.95.05"); return 0; }
nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *v) { *v = 13000; return 0; }
nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *v) { *v = 13000; return 0; }
nvmlReturn_t nvmlDeviceGetCount(unsigned *c) { *c = NDEV; return 0; }
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned *c) { *c = NDEV; return 0; }
nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned i, device **d) { devs[i].i = i; *d = &devs[i]; return 0; }
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned i, device **d) { return nvmlDeviceGetHandleByIndex(i, d); }
nvmlReturn_t nvmlDeviceGetUUID(device *d, char *u, unsigned n) { snprintf(u, n, "GPU-%08x-1111-2222-3333-444444444444", d->i + 1); return 0; }
nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *u, device **d) {
	for (unsigned i = 0; i < NDEV; i++) {
		char b[96];
		devs[i].i = i;
		nvmlDeviceGetUUID(&devs[i], b, sizeof b);
		if (!strcmp(b, u)) { *d = &devs[i]; return 0; }
	}
	return 6; /* NVML_ERROR_NOT_FOUND */
}
nvmlReturn_t nvmlDeviceGetIndex(device *d, unsigned *i) { *i = d->i; return 0; }
nvmlReturn_t nvmlDeviceGetMinorNumber(device *d, unsigned *m) { *m = d->i; return 0; }
nvmlReturn_t nvmlDeviceGetName(device *d, char *s, unsigned n) { (void)d; snprintf(s, n, "NVIDIA A100-SXM4-80GB"); return 0; }
nvmlReturn_t nvmlDeviceGetMigMode(device *d, unsigned *c, unsigned *p) { (void)d; *c = 0; *p = 0; return 0; }
nvmlReturn_t nvmlDeviceIsMigDeviceHandle(device *d, unsigned *m) { (void)d; *m = 0; return 0; }
nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(device *d, unsigned *c) { (void)d; *c = 0; return 0; }
nvmlReturn_t nvmlDeviceGetCudaComputeCapability(device *d, int *a, int *b) { (void)d; *a = 8; *b = 0; return 0; }
nvmlReturn_t nvmlDeviceGetBrand(device *d, int *b) { (void)d; *b = 2; return 0; }
nvmlReturn_t nvmlDeviceGetArchitecture(device *d, unsigned *a) { (void)d; *a = 7; return 0; }
nvmlReturn_t nvmlDeviceGetMemoryInfo(device *d, unsigned long long *m) { (void)d; m[0] = 85899345920ULL; m[1] = m[0]; m[2] = 0; return 0; }
typedef struct {
	char busIdLegacy[16];
	unsigned domain, bus, device, pciDeviceId, pciSubSystemId;
	char busId[32];
} pciInfo;
nvmlReturn_t nvmlDeviceGetPciInfo_v3(device *d, pciInfo *p) {
	memset(p, 0, sizeof *p);
	snprintf(p->busId, sizeof p->busId, "%s", bus[d->i % 8]);
	snprintf(p->busIdLegacy, sizeof p->busIdLegacy, "%s", bus[d->i % 8]);
	p->pciDeviceId = 0x20b210de;
	return 0;
}
nvmlReturn_t nvmlDeviceGetPciInfo_v2(device *d, pciInfo *p) { return nvmlDeviceGetPciInfo_v3(d, p); }
nvmlReturn_t nvmlDeviceGetPciInfo(device *d, pciInfo *p) { return nvmlDeviceGetPciInfo_v3(d, p); }
