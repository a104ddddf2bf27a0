/*
 * pemn/pemn.h — the whole public API of libpemn.
 * Link with `pkg-config --libs pemn`.
 */
#ifndef PEMN_PEMN_H
#define PEMN_PEMN_H

#include <pemn/common.h>
#include <pemn/key.h>
#include <pemn/gen.h>
#include <pemn/pkg.h>
#include <pemn/builder.h>
#include <pemn/safetensors.h>
#include <pemn/pack.h>
#include <pemn/client.h>
#include <pemn/trust.h>

#endif
