# deb.cmake - the Debian packages: `cpack -G DEB` in a build configured with
# -DCMAKE_INSTALL_PREFIX=/usr (`make deb`; `make deb-check` lints, installs,
# tries and removes them). One package per install component, split as
# Debian splits a library:
#
#   package       component  section   holds
#   libannb0      lib        libs      libannb.so.0 (and libannb.so.0.x.y)
#   libannb-dev   dev        libdevel  annb.h, libannb.so, libannb.a, annb.pc,
#                                      the CMake package annb
#   annb-tools    tools      science   ann-build, ann-query, ann-inspect,
#                                      ann-serve, their man pages, completion
#   python3-annb  python     python    the Python package annb
#
# The component doc (share/doc/annb: LICENSE, README.md) is not packaged:
# each package has /usr/share/doc/<package>/ with copyright and changelog.gz,
# and lintian overrides where there are any (cmake/deb/<package>.lintian-
# overrides, each with its reason). Those files are installed for cpack only
# (EXCLUDE_FROM_ALL): `cmake --install` leaves them out.

set(ANNB_DEB_MAINTAINER "the annb authors <annb@localhost>" CACHE STRING
  "the .deb's Maintainer field and changelog signature (name <email>); set it to publish")
set(ANNB_DEB_DIR ${CMAKE_CURRENT_BINARY_DIR}/deb)

set(CPACK_PACKAGE_NAME annb)
set(CPACK_PACKAGE_VENDOR "the annb authors")
set(CPACK_PACKAGE_CONTACT "${ANNB_DEB_MAINTAINER}")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL lib dev tools)
if(ANNB_BUILD_PYTHON)
  list(APPEND CPACK_COMPONENTS_ALL python)
endif()
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# A native package: the version is annb's own, with no Debian revision.
set(CPACK_DEBIAN_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# Depends from what the ELF files link (dpkg-shlibdeps). libannb.so.0 is in
# no installed package while the packages are made: found in the build tree
# (-l), its dependency given by hand below.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(ANNB_DEB_SELF "libannb0 (= ${PROJECT_VERSION})")
# Earlier builds made one package `annb` holding all of this.
set(CPACK_DEBIAN_PACKAGE_CONFLICTS annb)
set(CPACK_DEBIAN_PACKAGE_REPLACES annb)

set(ANNB_DEB_ABOUT [[
annb turns trained recommender embeddings (Spark ALS, item2vec, two-tower
models) and a MovieLens catalog into one versioned, checksummed
nearest-neighbour bundle, and answers top-k questions from it in
milliseconds: items for a user, similar items, similar users.]])

# ---- libannb0 ----
set(CPACK_DEBIAN_LIB_PACKAGE_NAME libannb0)
set(CPACK_DEBIAN_LIB_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_LIB_DESCRIPTION "nearest-neighbour bundles of recommender embeddings - library
${ANNB_DEB_ABOUT}

This package holds the shared library, libannb.so.0.")
# CPack's own dpkg-shlibdeps run would also write postinst and postrm
# scripts that call ldconfig, which the trigger below replaces (lintian:
# maintscript-calls-ldconfig): the library's Depends come from
# dpkg-shlibdeps run at cpack time instead (CPackDeb.cmake, generated below).
# OpenBLAS is dlopen()ed (lib/blas_lazy.c), so it is named by hand.
set(CPACK_DEBIAN_LIB_PACKAGE_SHLIBDEPS OFF)
set(ANNB_DEB_LIB_DEPENDS "")
if(ANNB_BLAS_SONAME STREQUAL "libopenblas.so.0")
  set(ANNB_DEB_LIB_DEPENDS "libopenblas0-pthread | libopenblas0")
endif()
# shlibs: what a package linking libannb.so.0 depends on (dpkg-shlibdeps);
# triggers: the loader's cache learns of the library (programs other than
# annb's tools have no RUNPATH to find it).
file(WRITE ${ANNB_DEB_DIR}/lib/shlibs "libannb ${PROJECT_VERSION_MAJOR} libannb0 (>= ${PROJECT_VERSION})\n")
file(WRITE ${ANNB_DEB_DIR}/lib/triggers "activate-noawait ldconfig\n")
set(CPACK_DEBIAN_LIB_PACKAGE_CONTROL_EXTRA ${ANNB_DEB_DIR}/lib/shlibs ${ANNB_DEB_DIR}/lib/triggers)

# ---- libannb-dev ----
# Depends: what a program built against annb.pc or the CMake package needs;
# libannb.a also needs, after it, what Libs.private names: Faiss, zstd, zlib,
# cJSON, libcsv, xxhash, and libstdc++ (which a C compiler alone lacks).
set(CPACK_DEBIAN_DEV_PACKAGE_NAME libannb-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_SHLIBDEPS OFF)
string(REGEX MATCH "^[0-9]+" _annb_gcc_major "${CMAKE_CXX_COMPILER_VERSION}")
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "${ANNB_DEB_SELF}, libfaiss-dev, libzstd-dev, zlib1g-dev, \
libcjson-dev, libcsv-dev, libxxhash-dev, libstdc++-${_annb_gcc_major}-dev | libstdc++-dev")
set(CPACK_DEBIAN_DEV_PACKAGE_SUGGESTS "pkg-config")
set(CPACK_DEBIAN_DEV_DESCRIPTION "nearest-neighbour bundles of recommender embeddings - development files
${ANNB_DEB_ABOUT}

This package holds what a C or C++ program needs to build against libannb:
the header annb.h, libannb.so and the static libannb.a, annb.pc for
pkg-config and the CMake package annb (find_package(annb)).")

# ---- annb-tools ----
set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME annb-tools)
set(CPACK_DEBIAN_TOOLS_PACKAGE_SECTION science)
set(CPACK_DEBIAN_TOOLS_PACKAGE_DEPENDS "${ANNB_DEB_SELF}")
set(CPACK_DEBIAN_TOOLS_DESCRIPTION "nearest-neighbour bundles of recommender embeddings - tools
${ANNB_DEB_ABOUT}

This package holds the command-line tools: ann-build makes a bundle,
ann-query answers from one, ann-inspect describes and verifies one, and
ann-serve answers over HTTP; with their manual pages and bash completion.")

# ---- python3-annb ----
if(ANNB_BUILD_PYTHON)
  set(CPACK_DEBIAN_PYTHON_PACKAGE_NAME python3-annb)
  set(CPACK_DEBIAN_PYTHON_PACKAGE_SECTION python)
  # The extension is built for one python3 (its name says which) and one
  # numpy C ABI: what dh_python3 and dh_numpy3 would add, from Debian's
  # record of numpy's ABI.
  string(REGEX MATCH "^([0-9]+)\\.([0-9]+)$" _ "${ANNB_PYTHON_VERSION}")
  math(EXPR _annb_py_next "${CMAKE_MATCH_2} + 1")
  set(_annb_py_deps
    "python3 (>= ${ANNB_PYTHON_VERSION}~), python3 (<< ${CMAKE_MATCH_1}.${_annb_py_next})")
  if(EXISTS /usr/share/numpy3/versions)
    file(STRINGS /usr/share/numpy3/versions _annb_np REGEX "^(abi|api-min-version) ")
    string(REGEX MATCH "abi ([0-9]+)" _ "${_annb_np}")
    set(_annb_np_abi ${CMAKE_MATCH_1})
    string(REGEX MATCH "api-min-version ([^;]+)" _ "${_annb_np}")
    string(APPEND _annb_py_deps ", python3-numpy (>= ${CMAKE_MATCH_1}), python3-numpy-abi${_annb_np_abi}")
  else()
    string(APPEND _annb_py_deps ", python3-numpy")
  endif()
  set(CPACK_DEBIAN_PYTHON_PACKAGE_DEPENDS "${ANNB_DEB_SELF}, ${_annb_py_deps}")
  # Bundle.frame needs pandas, annb.dask needs distributed.
  set(CPACK_DEBIAN_PYTHON_PACKAGE_SUGGESTS "python3-pandas, python3-distributed")
  set(CPACK_DEBIAN_PYTHON_DESCRIPTION "nearest-neighbour bundles of recommender embeddings - Python 3
${ANNB_DEB_ABOUT}

This package holds the Python 3 module annb: builds and searches with numpy
arrays in and out, pandas data frames, and helpers to answer every user on
a Dask cluster.")
endif()

# ---- /usr/share/doc/<package>/ and lintian overrides ----
# copyright: LICENSE in Debian's machine-readable form. libannb.so.0 has
# Faiss linked in (libfaiss.a), whose notice the Expat licence asks to keep.
file(READ ${CMAKE_CURRENT_SOURCE_DIR}/LICENSE _annb_license)
string(REGEX MATCH "Copyright \\(c\\) ([^\n]*)" _ "${_annb_license}")
set(_annb_copyright "${CMAKE_MATCH_1}")
string(FIND "${_annb_license}" "Permission is hereby granted" _at)
string(SUBSTRING "${_annb_license}" ${_at} -1 _annb_terms)
string(STRIP "${_annb_terms}" _annb_terms)
string(REPLACE "\n\n" "\n.\n" _annb_terms "${_annb_terms}")
string(REPLACE "\n" "\n " _annb_terms "${_annb_terms}")
file(WRITE ${ANNB_DEB_DIR}/copyright "\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: annb
Comment: libannb.so.0 (package libannb0) contains Faiss ${FAISS_VERSION}, linked in
 from Debian's libfaiss-dev (libfaiss.a): Copyright (c) Facebook, Inc. and
 its affiliates, under the same Expat licence as annb.

Files: *
Copyright: ${_annb_copyright}
License: Expat

License: Expat
 ${_annb_terms}
")
# changelog.gz (a native package's name for it), signed by the maintainer;
# its latest entry must be this version (checked when the packages are made).
configure_file(cmake/deb/changelog.in ${ANNB_DEB_DIR}/changelog @ONLY)
annb_gzip(${ANNB_DEB_DIR}/changelog ${ANNB_DEB_DIR}/changelog.gz)
# Overrides: the package's own file, and while the maintainer is the
# placeholder address, bogus-mail-host (no address to write to exists yet).
set(_annb_lintian_local "")
if(ANNB_DEB_MAINTAINER MATCHES "@localhost>")
  set(_annb_lintian_local "
# The Maintainer is the placeholder of a build from the source tree;
# whoever publishes the packages sets -DANNB_DEB_MAINTAINER='Name <address>'
# (and these two overrides are then not written).
@pkg@: bogus-mail-host Maintainer *
@pkg@: bogus-mail-host-in-debian-changelog *
")
endif()
foreach(comp IN LISTS CPACK_COMPONENTS_ALL)
  string(TOUPPER ${comp} _c)
  set(pkg ${CPACK_DEBIAN_${_c}_PACKAGE_NAME})
  install(FILES ${ANNB_DEB_DIR}/copyright ${ANNB_DEB_DIR}/changelog.gz
    DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/${pkg} COMPONENT ${comp} EXCLUDE_FROM_ALL)
  set(_o "")
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/cmake/deb/${pkg}.lintian-overrides)
    file(READ ${CMAKE_CURRENT_SOURCE_DIR}/cmake/deb/${pkg}.lintian-overrides _o)
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
      ${CMAKE_CURRENT_SOURCE_DIR}/cmake/deb/${pkg}.lintian-overrides)
  endif()
  string(CONFIGURE "${_o}${_annb_lintian_local}" _o @ONLY)
  if(_o)
    file(WRITE ${ANNB_DEB_DIR}/${comp}/${pkg} "${_o}")
    install(FILES ${ANNB_DEB_DIR}/${comp}/${pkg} DESTINATION ${CMAKE_INSTALL_DATADIR}/lintian/overrides
      COMPONENT ${comp} EXCLUDE_FROM_ALL)
  endif()
endforeach()
# The README goes with the tools it describes.
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/annb-tools COMPONENT tools
  EXCLUDE_FROM_ALL)

# ---- at cpack time (CPACK_PROJECT_CONFIG_FILE) ----
# The changelog names this version; libannb0's Depends from dpkg-shlibdeps
# over the built library (run in a directory with the debian/control it
# insists on); the other packages' dpkg-shlibdeps finds libannb.so.0 in the
# build tree (and, with no package to name, leaves it to ANNB_DEB_SELF).
file(WRITE ${ANNB_DEB_DIR}/shlibdeps/debian/control "")
file(GENERATE OUTPUT ${ANNB_DEB_DIR}/cpack-config.cmake CONTENT "\
if(CPACK_GENERATOR STREQUAL \"DEB\")
  file(STRINGS \"${ANNB_DEB_DIR}/changelog\" _top LIMIT_COUNT 1)
  if(NOT _top MATCHES \"^annb \\\\(${PROJECT_VERSION}\\\\) \")
    message(FATAL_ERROR \"cmake/deb/changelog.in: the latest entry is '\${_top}', \"
      \"not version ${PROJECT_VERSION}: add an entry for it\")
  endif()
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS \"$<TARGET_FILE_DIR:annb>\")
  execute_process(COMMAND dpkg-shlibdeps -O --ignore-missing-info -e \"$<TARGET_FILE:annb>\"
    WORKING_DIRECTORY \"${ANNB_DEB_DIR}/shlibdeps\" OUTPUT_VARIABLE _deps ERROR_VARIABLE _err
    RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0 OR NOT _deps MATCHES \"^shlibs:Depends=\")
    message(FATAL_ERROR \"dpkg-shlibdeps on libannb.so failed (\${_rc}): \${_deps}\${_err}\")
  endif()
  string(REGEX REPLACE \"^shlibs:Depends=([^\\n]*).*\" \"\\\\1\" _deps \"\${_deps}\")
  set(CPACK_DEBIAN_LIB_PACKAGE_DEPENDS \"\${_deps}\")
  if(NOT \"${ANNB_DEB_LIB_DEPENDS}\" STREQUAL \"\")
    string(APPEND CPACK_DEBIAN_LIB_PACKAGE_DEPENDS \", ${ANNB_DEB_LIB_DEPENDS}\")
  endif()
endif()
")
set(CPACK_PROJECT_CONFIG_FILE ${ANNB_DEB_DIR}/cpack-config.cmake)

include(CPack)
