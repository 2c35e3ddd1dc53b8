import Logging

#if canImport(Glibc)
    import Glibc
#endif
