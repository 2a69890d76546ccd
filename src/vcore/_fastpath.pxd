# Declarations of the core kernels, for other kernel modules to ``cimport``.

cdef class RtpPacket:
    cdef public bint marker
    cdef public long long payload_type
    cdef public long long sequence_number
    cdef public long long timestamp
    cdef public long long ssrc
    cdef public tuple csrc
    cdef public bint extension
    cdef public long long extension_profile
    cdef public bytes extension_data
    cdef public long long padding_size
    # the payload is a view: _prefix (0 or 2 bytes, an FU-A header the packetizer
    # synthesized) followed by _src[_off:_off + _plen]; no copy until it is asked for
    cdef bytes _src
    cdef Py_ssize_t _off
    cdef Py_ssize_t _plen
    cdef unsigned char _prefix[2]
    cdef int _prefix_len


cdef class AccessUnit:
    cdef public bytes data
    cdef public long long timestamp
    cdef public bint keyframe
    cdef public bint complete


cdef class H264Depacketizer:
    cdef unsigned char* _buf
    cdef Py_ssize_t _len
    cdef Py_ssize_t _cap
    cdef Py_ssize_t _fu_start
    cdef bint _in_fu
    cdef int _fu_type  # the NAL type of the unit being reassembled: its start fragment's (RFC 6184 §5.8)
    cdef long long _timestamp
    cdef long long _expected
    cdef bint _broken
    cdef bint _idr
    cdef bint _have_sps
    cdef bint _have_pps
    cdef public long long packets
    cdef public long long lost
    cdef public long long late
    cdef public long long malformed
    cdef public long long unsupported
    cdef public long long units
    cdef public long long incomplete
    cdef int _reserve(self, Py_ssize_t extra) except -1
    cdef int _append(self, const unsigned char* data, Py_ssize_t n) except -1
    cdef void _add_nal_type(self, int t) noexcept
    cdef void _drop_fu(self) noexcept
    cdef int _payload(self, RtpPacket packet) except -1
    cdef int _fu_a(self, int header, int fu_header, const unsigned char* data, Py_ssize_t size) except -1
    cdef AccessUnit _finish(self)


# Sequence and timestamp arithmetic (RFC 3550 §5.1, A.1): the C home of vcore.rtp.seq,
# shared by every kernel module (cimport these, never re-derive them).

cdef inline long long c_extend_seq(long long seq, long long highest_ext) noexcept:
    cdef long long ext = (highest_ext & ~(<long long>0xFFFF)) | seq
    cdef long long d = ext - highest_ext
    if d > 0x8000:
        ext -= 0x10000
    elif d < -0x8000:
        ext += 0x10000
    return ext


cdef inline long long c_ts_diff(long long a, long long b) noexcept:
    cdef long long mask = 0xFFFFFFFF
    cdef long long d = (a - b) & mask
    return d - (mask + 1) if d > (mask >> 1) else d


cdef inline int c_seq_diff(long long a, long long b) noexcept:
    cdef int d = <int>((a - b) & 0xFFFF)
    return d - 0x10000 if d >= 0x8000 else d
