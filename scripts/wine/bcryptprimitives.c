/*
 * ProcessPrng for Wines that lack bcryptprimitives.dll (Debian bookworm's Wine 8.0).
 *
 * Rust's standard library on Windows draws its random numbers (HashMap seeds) from
 * bcryptprimitives.dll's ProcessPrng, so no Rust test binary starts without it. This shim
 * provides that one function over advapi32's RtlGenRandom (exported as SystemFunction036),
 * which every Wine has. scripts/wine-tests.sh builds it with x86_64-w64-mingw32-gcc and puts
 * it beside the test executables only when the Wine prefix has no bcryptprimitives.dll.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

/* Documented to always return TRUE; a failing RtlGenRandom is reported rather than hidden. */
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
