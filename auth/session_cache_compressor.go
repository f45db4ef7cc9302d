package auth

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// errCacheValueTooLarge means a value inflates past maxPickleBytes: a
// session is never that large, so it is refused rather than buffered.
var errCacheValueTooLarge = errors.New("cached value inflates past the size limit")

// cacheDecompressor undoes a django-redis compressor. Like django-redis, a
// value that does not decompress is taken as stored uncompressed (its
// compressors leave values shorter than min_length as they are), so
// decompress reports ok=false and the caller keeps the raw bytes.
type cacheDecompressor interface {
	decompress(src []byte) (out []byte, ok bool, err error)
	close()
}

// newCacheDecompressor returns the decompressor for a short name from
// SessionCacheOptions.
func newCacheDecompressor(name string) (cacheDecompressor, error) {
	switch name {
	case cacheCompressorIdentity:
		return identityDecompressor{}, nil
	case cacheCompressorZlib:
		return readerDecompressor{open: func(r io.Reader) (io.ReadCloser, error) { return zlib.NewReader(r) }}, nil
	case cacheCompressorGzip:
		return readerDecompressor{open: func(r io.Reader) (io.ReadCloser, error) { return gzip.NewReader(r) }}, nil
	case cacheCompressorZstd:
		d, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(maxPickleBytes), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("zstd decoder: %w", err)
		}
		return zstdDecompressor{d}, nil
	}
	return nil, fmt.Errorf("compressor %q is not supported", name)
}

type identityDecompressor struct{}

func (identityDecompressor) decompress([]byte) ([]byte, bool, error) { return nil, false, nil }
func (identityDecompressor) close()                                  {}

// readerDecompressor inflates a zlib or gzip stream, reading at most one
// byte past the limit.
type readerDecompressor struct {
	open func(io.Reader) (io.ReadCloser, error)
}

func (d readerDecompressor) decompress(src []byte) ([]byte, bool, error) {
	r, err := d.open(bytes.NewReader(src))
	if err != nil {
		return nil, false, nil
	}
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, maxPickleBytes+1))
	if len(out) > maxPickleBytes {
		return nil, false, errCacheValueTooLarge
	}
	if err != nil {
		return nil, false, nil
	}
	return out, true, nil
}

func (readerDecompressor) close() {}

// zstdDecompressor decodes whole zstd frames; the decoder refuses output
// past maxPickleBytes by itself.
type zstdDecompressor struct {
	d *zstd.Decoder
}

func (z zstdDecompressor) decompress(src []byte) ([]byte, bool, error) {
	out, err := z.d.DecodeAll(src, nil)
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) || len(out) > maxPickleBytes {
		return nil, false, errCacheValueTooLarge
	}
	if err != nil {
		return nil, false, nil
	}
	return out, true, nil
}

func (z zstdDecompressor) close() { z.d.Close() }
